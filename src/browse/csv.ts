/**
 * A small RFC 4180 CSV reader for previews: quoted fields, doubled quotes,
 * CRLF or LF line ends, and a cap on the rows read.
 */
export interface ICsvTable {
  rows: string[][];
  /** More rows exist than were read. */
  more: boolean;
}

export function parseCsv(
  text: string,
  maxRows = 1000,
  delimiter = ','
): ICsvTable {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const n = text.length;
  const endRow = (): boolean => {
    row.push(field);
    field = '';
    rows.push(row);
    row = [];
    return rows.length >= maxRows;
  };
  while (i < n) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i += 1;
        continue;
      }
      field += ch;
      i += 1;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      i += 1;
    } else if (ch === delimiter) {
      row.push(field);
      field = '';
      i += 1;
    } else if (ch === '\n' || ch === '\r') {
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      if (endRow()) {
        return { rows, more: i < n };
      }
    } else {
      field += ch;
      i += 1;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return { rows, more: false };
}
