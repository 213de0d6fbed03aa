// The page's script: the generated types (src/api.d.ts, from openapi/openapi.json) and
// openapi-fetch, as a front-end team would use them, from an origin other than the API's.
import createClient from "openapi-fetch";
import type { paths } from "./api";

type Result = { ticketNumber: number; firstResponseDue: string | null; phase: string };

export async function openTicket(api: string, email: string, password: string): Promise<Result> {
  const client = createClient<paths>({ baseUrl: api });
  const login = await client.POST("/v1/auth/login", { body: { email, password } });
  if (!login.data) throw new Error(`login failed: ${JSON.stringify(login.error)}`);
  const headers = { authorization: `Bearer ${login.data.access_token}` };

  const created = await client.POST("/v1/tickets", {
    headers,
    body: { subject: "Site fora do ar", description: "Erro 502 desde 10h", category: "technical", severity: "high" },
  });
  if (!created.data) throw new Error(`opening the ticket failed: ${JSON.stringify(created.error)}`);

  const sla = await client.GET("/v1/tickets/{id}/sla", { headers, params: { path: { id: created.data.id } } });
  if (!sla.data) throw new Error(`reading the SLA failed: ${JSON.stringify(sla.error)}`);
  return {
    ticketNumber: created.data.number,
    firstResponseDue: created.data.sla.first_response.due_at ?? null,
    phase: sla.data.first_response.phase,
  };
}

const params = new URLSearchParams(location.search);
const out = document.getElementById("result");
openTicket(params.get("api") ?? "", params.get("email") ?? "", params.get("password") ?? "")
  .then((result) => {
    if (out) out.textContent = JSON.stringify(result);
  })
  .catch((error: unknown) => {
    if (out) out.textContent = `error: ${String(error)}`;
  });
