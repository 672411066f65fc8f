/** The period every rate limit in wrangler.toml counts over, seconds (the binding allows 10 or 60; test/integration/deploy.test.ts checks each). */
export const RATE_LIMIT_PERIOD_S = 60;
