// Just enough MIME to read the fixtures' attachments back: the base64 body of the part whose
// Content-Disposition names `filename`. The fixtures are hand-written, so this stays simple.

export function attachmentFromEml(eml, filename) {
  const text = eml.toString('latin1');
  const boundaries = [...text.matchAll(/boundary="([^"]+)"/gi)].map((m) => m[1]);
  for (const boundary of boundaries) {
    for (const part of text.split(`--${boundary}`)) {
      const split = part.search(/\r?\n\r?\n/);
      if (split < 0) continue;
      const headers = part.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
      const named = new RegExp(`filename="?${filename.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?`, 'i');
      if (!named.test(headers) || !/content-transfer-encoding:\s*base64/i.test(headers)) continue;
      const body = part.slice(split).replace(/\s+/g, '');
      return Buffer.from(body, 'base64');
    }
  }
  throw new Error(`no base64 part named ${filename}`);
}
