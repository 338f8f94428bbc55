// Plain tables for the terminal (aligned columns) and for markdown result files, from the
// same rows so the two never disagree.

export interface Column {
  readonly title: string
  /** Numbers read best right-aligned. */
  readonly alignRight: boolean
}

export function textTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) => Math.max(column.title.length, ...rows.map((row) => row[i]?.length ?? 0)))
  // A row with more cells than there are columns keeps its extra cells as they are.
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (columns[i]?.alignRight === true ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(columns.map((column) => column.title)), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n')
}

export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`
  return [
    line(columns.map((column) => column.title)),
    `|${columns.map((column) => (column.alignRight ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map(line),
  ].join('\n')
}
