/** An API error as the client sees it: the server's problem+json, or a transport failure. */
export class OzClientError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly problem: Record<string, unknown> | null,
  ) {
    super(message);
    this.name = 'OzClientError';
  }

  get code(): string | undefined {
    return typeof this.problem?.error_code === 'string' ? this.problem.error_code : undefined;
  }
}
