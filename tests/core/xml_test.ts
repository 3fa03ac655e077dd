import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { KefuError } from "../../src/core/errors.ts";
import { cdata, hasDeclaration, refuseDeclarations } from "../../src/core/xml.ts";
import { decodeXml, encodeReplyXml } from "../../src/channels/wx_official/xml_codec.ts";
import { encryptedReplyXml, extractEncrypt, WechatCipher } from "../../src/channels/wx_official/crypto.ts";
import { parseXml } from "../../src/simulator/reply_xml.ts";

const DECLARED = [
  `<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>`,
  `<?xml version="1.0"?><!doctype xml SYSTEM "file:///etc/passwd"><xml/>`,
  `<xml><!ENTITY x "y"><FromUserName>u</FromUserName></xml>`,
  `<xml><!  DocType x></xml>`,
];
const PLAIN = [
  "<xml><Content>DOCTYPE and ENTITY as words</Content></xml>",
  "<xml><!-- a comment --></xml>",
  "<xml><Content><![CDATA[x]]></Content></xml>",
];

Deno.test("core/xml: refuseDeclarations throws xml_doctype_forbidden (400) for any DOCTYPE or ENTITY", () => {
  for (const text of DECLARED) {
    assert.equal(hasDeclaration(text), true, text);
    assert.throws(() => refuseDeclarations(text), (e) => {
      assert.ok(e instanceof KefuError);
      assert.equal(e.kind, "xml_doctype_forbidden");
      assert.equal(e.status, 400);
      assert.equal(e.message, "XML with a DOCTYPE or ENTITY declaration is refused");
      return true;
    });
  }
  for (const text of PLAIN) {
    assert.equal(hasDeclaration(text), false, text);
    refuseDeclarations(text);
  }
  // Deliberately coarse, since it runs before any parsing: "<!DOCTYPE" refuses the document even inside CDATA.
  assert.equal(hasDeclaration("<xml><Content><![CDATA[<!DOCTYPE html>]]></Content></xml>"), true);
});

Deno.test("core/xml: the three XML readers refuse exactly what refuseDeclarations refuses", async () => {
  for (const text of DECLARED) {
    assert.throws(() => decodeXml(text), (e) => e instanceof KefuError && e.kind === "xml_doctype_forbidden");
    assert.throws(() => extractEncrypt(text), (e) => e instanceof KefuError && e.kind === "xml_doctype_forbidden");
    assert.equal(parseXml(text), "a DOCTYPE or ENTITY declaration");
  }
  // And let the rest through to their parsers.
  assert.notEqual(parseXml("<xml><Content>DOCTYPE</Content></xml>"), "a DOCTYPE or ENTITY declaration");
  const cipher = await WechatCipher.create("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1");
  const env = await encryptedReplyXml(cipher, "token", "<xml/>", 1, "n");
  assert.equal(cipher.decrypt(extractEncrypt(env)), "<xml/>");
});

Deno.test("core/xml: cdata wraps text, splitting every ]]> so a parser reads the text back unchanged", () => {
  assert.equal(cdata(""), "<![CDATA[]]>");
  assert.equal(cdata("a<b>&c"), "<![CDATA[a<b>&c]]>");
  assert.equal(cdata("x]]>y"), "<![CDATA[x]]]]><![CDATA[>y]]>");
  const parser = new XMLParser({ parseTagValue: false, trimValues: false });
  for (const s of ["]]>", "]]>]]>", "a]]]>b", "]]]]>", "<![CDATA[", "你好 ]]> 👋", "]", "]]"]) {
    assert.equal(parser.parse(`<x>${cdata(s)}</x>`).x, s, s);
  }
});

Deno.test("core/xml: the codec and the encrypted reply write CDATA with it", async () => {
  const tricky = "a]]><x/>";
  const out = encodeReplyXml({
    id: "r1",
    direction: "out",
    channel: "wx_official_account",
    contact: tricky,
    agent: "a1",
    company: "",
    type: "text",
    content: tricky,
    media: "",
    sendTime: 1,
    name: "",
    avatar: "",
  }, "gh");
  assert.ok(out.includes(`<ToUserName>${cdata(tricky)}</ToUserName>`));
  assert.ok(out.includes(`<Content>${cdata(tricky)}</Content>`));
  const cipher = await WechatCipher.create("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1");
  const env = await encryptedReplyXml(cipher, "token", "<xml/>", 1, tricky);
  assert.ok(env.endsWith(`<Nonce>${cdata(tricky)}</Nonce></xml>`));
});
