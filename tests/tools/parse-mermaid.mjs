// Parses a Mermaid diagram from stdin with the real Mermaid parser; exit 0 if it parses.
import { JSDOM } from "jsdom";
import { readFileSync } from "fs";
const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
const text = readFileSync(0, "utf8");
try {
  const r = await mermaid.parse(text);
  console.log(JSON.stringify(r));
} catch (e) {
  console.error("mermaid parse error:", e?.message ?? e);
  process.exit(1);
}
