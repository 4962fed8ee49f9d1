/**
 * A small, tolerant XML reader for the JFS responses (file/folder/user documents, liststream,
 * error documents). It builds a tree of elements; text is entity-decoded; namespaces are kept
 * as part of the name; comments, processing instructions and DOCTYPE are skipped.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** concatenated text content directly inside this element (not of its children) */
  text: string;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);/g, (all, ent: string) => {
    if (ent[0] === '#') {
      const cp = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      return Number.isFinite(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    }
    return NAMED[ent] ?? all;
  });
}

export class XmlParseError extends Error {
  override name = 'XmlParseError';
}

/** Parse a document and return its root element. Throws XmlParseError on malformed or truncated input. */
export function parseXml(src: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let i = 0;
  const n = src.length;
  const attrRe = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  while (i < n) {
    const lt = src.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd > i) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(src.slice(i, textEnd));
      else if (src.slice(i, textEnd).trim() !== '') throw new XmlParseError('text outside the root element');
    }
    if (lt < 0) break;
    if (src.startsWith('<!--', lt)) {
      const e = src.indexOf('-->', lt + 4);
      if (e < 0) throw new XmlParseError('unterminated comment');
      i = e + 3;
      continue;
    }
    if (src.startsWith('<![CDATA[', lt)) {
      const e = src.indexOf(']]>', lt + 9);
      if (e < 0) throw new XmlParseError('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (top) top.text += src.slice(lt + 9, e);
      i = e + 3;
      continue;
    }
    if (src.startsWith('<?', lt)) {
      const e = src.indexOf('?>', lt + 2);
      if (e < 0) throw new XmlParseError('unterminated processing instruction');
      i = e + 2;
      continue;
    }
    if (src.startsWith('<!', lt)) {
      const e = src.indexOf('>', lt + 2);
      if (e < 0) throw new XmlParseError('unterminated declaration');
      i = e + 1;
      continue;
    }
    // find the end of the tag, skipping '>' inside quoted attribute values
    let j = lt + 1;
    let quote = '';
    for (; j < n; j++) {
      const c = src[j]!;
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '>') {
        break;
      }
    }
    if (j >= n) throw new XmlParseError('unterminated tag (truncated document?)');
    const body = src.slice(lt + 1, j);
    i = j + 1;
    if (body.startsWith('/')) {
      const name = body.slice(1).trim();
      const top = stack.pop();
      if (!top || top.name !== name) throw new XmlParseError(`mismatched closing tag </${name}>`);
      if (stack.length === 0) root = top;
      continue;
    }
    const selfClosing = body.endsWith('/');
    const inner = selfClosing ? body.slice(0, -1) : body;
    const m = /^\s*([^\s/>]+)/.exec(inner);
    if (!m) throw new XmlParseError('bad tag');
    const el: XmlElement = { name: m[1]!, attrs: {}, children: [], text: '' };
    attrRe.lastIndex = m[0].length;
    for (let a = attrRe.exec(inner); a; a = attrRe.exec(inner)) {
      el.attrs[a[1]!] = decodeEntities(a[2] ?? a[3] ?? '');
    }
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else if (root) throw new XmlParseError('more than one root element');
    if (selfClosing) {
      if (!parent) root = el;
    } else {
      stack.push(el);
    }
  }
  if (stack.length > 0) throw new XmlParseError(`unterminated element <${stack[stack.length - 1]!.name}> (truncated document?)`);
  if (!root) throw new XmlParseError('empty document');
  return root;
}

export function child(e: XmlElement | undefined, name: string): XmlElement | undefined {
  return e?.children.find((c) => c.name === name);
}

export function childText(e: XmlElement | undefined, name: string): string | undefined {
  const c = child(e, name);
  return c ? c.text.trim() : undefined;
}

/** Every element with this name anywhere below `e` (document order), not descending into matches. */
export function findAll(e: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of e.children) {
    if (c.name === name) out.push(c);
    else findAll(c, name, out);
  }
  return out;
}
