// A browser reading PanelX's state straight from a Supabase project, under
// the signed-in user's own JWT (row level security decides what they see),
// and following reconcile status live through Supabase Realtime.
// Needs: `panelx migrate --supabase` on the project's database, and the
// "panelx" schema in the API's exposed schemas (see docs/supabase.md).
import { createClient } from "@supabase/supabase-js";

const supabase = createClient("https://<project>.supabase.co", "<anon key>", {
  db: { schema: "panelx" },
});

await supabase.auth.signInWithPassword({ email: "ada@example.com", password: "…" });

// The projects the user is a member of, and their services' status. A
// service's spec (which may hold env values) is not readable: select only
// the granted columns.
const { data: projects } = await supabase.from("projects").select("name, status");
const { data: services, error } = await supabase
  .from("services")
  .select("project, name, generation, status")
  .eq("project", "shop");
if (error) throw error;
for (const s of services) {
  console.log(s.name, s.status.phase, `${s.status.readyReplicas ?? 0} ready`,
    s.status.observedGeneration < s.generation ? `applying generation ${s.generation}…` : "");
}

// Live: every status change of the project's services, and its new events.
supabase
  .channel("shop")
  .on("postgres_changes", { event: "UPDATE", schema: "panelx", table: "services", filter: "project=eq.shop" },
    ({ new: s }) => console.log("status", s.name, s.status.phase))
  .on("postgres_changes", { event: "*", schema: "panelx", table: "events", filter: "project=eq.shop" },
    ({ new: e }) => console.log(e.type, e.reason, e.message))
  .subscribe();

// Changes go through PanelX's API, never straight into these tables
// (the profile grants no write): e.g. fetch(`${panelx}/api/v1/apply`, …)
// with the same access token in the Authorization header.
