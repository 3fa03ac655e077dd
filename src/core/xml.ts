/**
 * What every XML reader and writer of kefu shares: the refusal of documents
 * that declare a DOCTYPE or ENTITY (entity expansion, external entities), and
 * the CDATA section writer. The WeChat codec, the safe-mode envelope and the
 * simulator's reply reader all go through here.
 *
 * @module
 */

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
