import { XMLParser } from 'fast-xml-parser';

export const ROUTE53_XMLNS = 'https://route53.amazonaws.com/doc/2013-04-01/';

/** Elements that are list members in the 2013-04-01 request shapes. */
const LIST_MEMBERS = new Set(['Change', 'ResourceRecord', 'Tag', 'ChildHealthCheck']);
/** Members named like a scalar elsewhere: a list only under these parents. */
const LIST_PATHS = ['RemoveTagKeys.Key', 'Regions.Region'];

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name, jpath) => LIST_MEMBERS.has(name) || LIST_PATHS.some((path) => String(jpath).endsWith(path)),
});

export type XmlValue = string | XmlObject | XmlValue[];
export interface XmlObject {
  [key: string]: XmlValue;
}

/** Parses a request body into its root element's children (strings stay strings). */
export function parseRequest(body: string, rootName: string): XmlObject {
  const doc = parser.parse(body) as Record<string, unknown>;
  const root = doc[rootName];
  if (typeof root !== 'object' || root === null) throw new Error(`expected <${rootName}> as the root element`);
  return root as XmlObject;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/**
 * Serializes a plain object as XML children in key order. Arrays become
 * repeated `member` elements wrapped in the key: `{Tags: {Tag: [..]}}` style
 * is written by the caller, so an array here repeats the key itself.
 */
export function toXml(value: unknown, name: string): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map((item) => toXml(item, name)).join('');
  if (typeof value === 'object') {
    const inner = Object.entries(value as Record<string, unknown>)
      .map(([key, child]) => toXml(child, key))
      .join('');
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function document(rootName: string, body: Record<string, unknown>): string {
  const inner = Object.entries(body)
    .map(([key, child]) => toXml(child, key))
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${rootName} xmlns="${ROUTE53_XMLNS}">${inner}</${rootName}>`;
}

/** The standard Route53 error body. */
export function errorDocument(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${ROUTE53_XMLNS}">` +
    `<Error><Type>Sender</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error>` +
    `<RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`
  );
}
