import { Command } from 'commander';
import open from 'open';
import type { CliContext } from '../context.js';

/**
 * `oz open [RUN_ID]`: a one-time link that opens the dashboard signed in as
 * this CLI's key (at the run's page, or the runs list), printed, and opened
 * in a browser where there is one. The link works once, for two minutes; its
 * token is in the fragment, which the browser sends to no server.
 */
export function openCommand(context: (cmd: Command) => CliContext): Command {
  return new Command('open')
    .description("Open the web dashboard signed in (at a run's page with RUN_ID): prints a one-time link that works for 2 minutes, and opens a browser where there is one")
    .argument('[run-id]', 'the run whose page to open (default: the runs list)')
    .option('--no-browser', 'only print the link; do not start a browser')
    .action(async (runId: string | undefined, options: { browser: boolean }, c: Command) => {
      const ctx = context(c);
      const link = await ctx.client.createLoginLink(runId === undefined ? {} : { run_id: runId });
      ctx.out.result(`${link.url}\nThis link signs you in once, until ${link.expires_at}; do not share it.`, link, link.url);
      if (!options.browser || !ctx.env.hasDisplay) return;
      // Only ever a page of the server this CLI talks to.
      if (new URL(link.url).origin !== new URL(ctx.serverUrl).origin) {
        ctx.err(`not starting a browser: the server answered a link to ${new URL(link.url).origin}, not ${new URL(ctx.serverUrl).origin}; open it yourself if you trust it\n`);
        return;
      }
      try {
        await open(link.url, { wait: false });
      } catch (error) {
        ctx.err(`could not start a browser (${(error as Error).message}); open the link above yourself\n`);
      }
    });
}
