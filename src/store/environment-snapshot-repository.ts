import type { EnvironmentSnapshot } from '../core/environment-snapshot.js';
import type { EnvironmentSnapshotsTable } from './schema.js';
import type { StoreContext } from './store-context.js';

function toSnapshot(row: EnvironmentSnapshotsTable): EnvironmentSnapshot {
  return {
    environmentId: row.environment_id,
    teamId: row.team_id,
    key: row.key,
    bytes: Number(row.bytes),
    createdAt: Number(row.created_at),
    hits: Number(row.hits),
    lastUsedAt: Number(row.last_used_at),
    runId: row.run_id,
  };
}

/**
 * Each environment's latest warm-start snapshot, as its workers reported it
 * (docs/environments.md "Snapshots"): one row per environment, within its team.
 */
export class EnvironmentSnapshotRepository {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * Record `snapshot` as its environment's latest, replacing the one before.
   * False (nothing written) when the environment is not the team's, or is gone.
   */
  async record(snapshot: EnvironmentSnapshot): Promise<boolean> {
    const row: EnvironmentSnapshotsTable = {
      environment_id: snapshot.environmentId,
      team_id: snapshot.teamId,
      key: snapshot.key,
      bytes: snapshot.bytes,
      created_at: snapshot.createdAt,
      hits: snapshot.hits,
      last_used_at: snapshot.lastUsedAt,
      run_id: snapshot.runId,
    };
    return this.ctx.ops.writeTx(this.ctx.db, async (tx) => {
      const env = await tx.selectFrom('environments').select('id').where('id', '=', snapshot.environmentId).where('team_id', '=', snapshot.teamId).executeTakeFirst();
      if (!env) return false;
      await tx
        .insertInto('environment_snapshots')
        .values(row)
        .onConflict((oc) =>
          oc.column('environment_id').doUpdateSet((eb) => ({
            key: eb.ref('excluded.key'),
            bytes: eb.ref('excluded.bytes'),
            created_at: eb.ref('excluded.created_at'),
            hits: eb.ref('excluded.hits'),
            last_used_at: eb.ref('excluded.last_used_at'),
            run_id: eb.ref('excluded.run_id'),
          })),
        )
        .execute();
      return true;
    });
  }

  async get(teamId: string, environmentId: string): Promise<EnvironmentSnapshot | null> {
    const row = await this.ctx.db.selectFrom('environment_snapshots').selectAll().where('team_id', '=', teamId).where('environment_id', '=', environmentId).executeTakeFirst();
    return row ? toSnapshot(row) : null;
  }

  /** The snapshots of these environments of the team (those that have one). */
  async list(teamId: string, environmentIds: readonly string[]): Promise<EnvironmentSnapshot[]> {
    if (environmentIds.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('environment_snapshots')
      .selectAll()
      .where('team_id', '=', teamId)
      .where('environment_id', 'in', [...environmentIds])
      .execute();
    return rows.map(toSnapshot);
  }
}
