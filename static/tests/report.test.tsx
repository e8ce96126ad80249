/** The decision page's Report button over real HTTP: a small server on 127.0.0.1
 * answers GET /v1/decisions/{id}/report as the API does (HTML, the SHA-256 header,
 * the key required); the button fetches it with the key and offers it to open or
 * save, with its hash; a refusal shows the problem. */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../src/api/client";
import { ReportButton } from "../src/pages/DecisionPage";

const HTML = "<!DOCTYPE html><html><body><h1>Decision report</h1></body></html>";
const SHA = "a".repeat(64);
let server: Server;
let base: string;
const seen: { url: string; auth?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const cors = {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Allow-Headers": "Authorization, Content-Type",
      "Access-Control-Expose-Headers": "X-Entail-Report-Sha256, X-Entail-Report-Source",
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    seen.push({ url: req.url!, auth: req.headers.authorization });
    if (req.url === "/v1/decisions/dec_1/report" && req.headers.authorization === "Bearer ent_key") {
      res.writeHead(200, {
        ...cors,
        "Content-Type": "text/html; charset=utf-8",
        "X-Entail-Report-Sha256": SHA,
        "X-Entail-Report-Source": "audit",
      });
      res.end(HTML);
      return;
    }
    res.writeHead(404, { ...cors, "Content-Type": "application/problem+json" });
    res.end(JSON.stringify({ title: "Not found", status: 404, detail: "decision 'dec_2' does not exist" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(cleanup);
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the decision page's Report button", () => {
  it("fetches the report with the key and offers it to open and save, with its hash", async () => {
    render(<ReportButton api={new ApiClient(base, "ent_key")} id="dec_1" />);
    fireEvent.click(screen.getByRole("button", { name: "Report" }));
    const open = await screen.findByRole("link", { name: "Open the report" });
    expect(seen.at(-1)).toEqual({ url: "/v1/decisions/dec_1/report", auth: "Bearer ent_key" });
    expect(open.getAttribute("target")).toBe("_blank");
    expect(open.getAttribute("rel")).toContain("noopener");
    const href = open.getAttribute("href")!;
    expect(href.startsWith("blob:")).toBe(true);
    const save = screen.getByRole("link", { name: "Save" });
    expect(save.getAttribute("href")).toBe(href);
    expect(save.getAttribute("download")).toBe("report-dec_1.html");
    expect(screen.getByTitle(SHA).textContent).toBe(SHA.slice(0, 16));
  });

  it("shows the API's problem when the report is refused", async () => {
    render(<ReportButton api={new ApiClient(base, "ent_key")} id="dec_2" />);
    fireEvent.click(screen.getByRole("button", { name: "Report" }));
    await waitFor(() => expect(screen.getByText(/dec_2' does not exist/)).toBeTruthy());
    expect(screen.queryByRole("link", { name: "Open the report" })).toBeNull();
  });
});
