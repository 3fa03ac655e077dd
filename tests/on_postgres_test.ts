/**
 * The end-to-end and durability tests again, on PostgreSQL (issue 18): every service they start keeps its data in a
 * database of a real PostgreSQL server started for this file; a restart on the same DATA_DIR finds the same database.
 * The crash test runs on PostgreSQL in its own file (tests/crash_test.ts).
 */
import { startServer, stopPostgres, usePostgres } from "./support/on_postgres.ts";

usePostgres();
Deno.test("on PostgreSQL: the server starts", () => startServer());

await import("./service_test.ts");
await import("./durability_test.ts");
await import("./agents/workplace_test.ts");
await import("./http/bad_input_test.ts");
await import("./channels/channel_test.ts");
await import("./agents/canned_test.ts");
await import("./automation/automatic_service_test.ts");
await import("./agents/team_test.ts");
await import("./reports/routes_test.ts");
await import("./hub/assignment_test.ts");

Deno.test("on PostgreSQL: the server stops", () => stopPostgres());
