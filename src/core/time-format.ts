// Log time stamps. A busy server writes many lines within one second; as nginx caches its time
// strings, a format is computed once per second and reused until the second changes.

export function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n)
}

/** A time format of whole seconds (UTC), formatted at most once per second. */
export class PerSecondFormat {
  private readonly render: (utc: Date) => string
  private second = Number.NaN
  private text = ''

  constructor(render: (utc: Date) => string) {
    this.render = render
  }

  format(ms: number): string {
    const second = Math.floor(ms / 1000)
    if (second !== this.second) {
      this.text = this.render(new Date(second * 1000))
      this.second = second
    }
    return this.text
  }
}
