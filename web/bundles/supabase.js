// Entry of ui/lib/supabase.js (web/build.sh): the Supabase client, for the
// email/password sign-in of a server configured for a Supabase project.
// Loaded only by the sign-in page and a Supabase session, never by the
// overview of a PanelX token.
export { createClient } from '@supabase/supabase-js';
