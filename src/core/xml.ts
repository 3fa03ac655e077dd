/**
 * What every XML reader and writer of kefu shares: the refusal of documents
 * that declare a DOCTYPE or ENTITY (entity expansion, external entities), and
 * the CDATA section writer, and the reader of the XML WeChat puts inside a
 * personal account's message (locations, links, files, cards). The WeChat
 * codec, the safe-mode envelope, the PC-hook and WXBot channels and the
 * simulator's reply reader all go through here.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { KefuError } from "./errors.ts";

// XML allows no space between "<!" and the keyword; the \s* also catches sloppy variants.
const DECLARATION_RE = /<!\s*(?:DOCTYPE|ENTITY)/i;

/** Whether `text` holds a DOCTYPE or ENTITY declaration (case-insensitive), anywhere. */
export function hasDeclaration(text: string): boolean {
  return DECLARATION_RE.test(text);
}

/**
 * Throw `xml_doctype_forbidden` (400) when `text` declares a DOCTYPE or ENTITY: run before any parser
 * sees the document, so no entity of the sender's is ever expanded.
 */
export function refuseDeclarations(text: string): void {
  if (DECLARATION_RE.test(text)) {
    throw new KefuError("xml_doctype_forbidden", "XML with a DOCTYPE or ENTITY declaration is refused", 400);
  }
}

/** `s` as a CDATA section; a "]]>" inside, which would end it early, is split across two sections. */
export function cdata(s: string): string {
  return `<![CDATA[${s.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

// Attributes on (location, card and friend-request bodies are all attributes, as `@name`), no value turned into a
// number (ids are 64-bit), only the predefined entities expanded.
const bodyParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: false,
  jPath: false,
});

/**
 * The XML WeChat puts in a personal account's message `content` (`<msg><location …/></msg>`, `<appmsg>`…), as
 * objects; undefined when it is not well-formed or declares a DOCTYPE/ENTITY (the caller shows the raw text then).
 */
export function readMessageXml(text: string): Record<string, unknown> | undefined {
  const t = text.trim();
  if (!t.startsWith("<") || hasDeclaration(t) || XMLValidator.validate(t) !== true) return undefined;
  try {
    const doc = bodyParser.parse(t);
    return typeof doc === "object" && doc !== null ? doc as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}
