// Renders /openapi.json as a list of operations with their parameters (no external viewer needed).
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attrs || {});
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function schemaType(spec, schema) {
  if (!schema) return "";
  if (schema.$ref) return schemaType(spec, resolve(spec, schema.$ref));
  if (schema.anyOf) return schema.anyOf.map((s) => schemaType(spec, s)).join(" | ");
  if (schema.format === "binary") return "file";
  return schema.type || "object";
}

function resolve(spec, ref) {
  return ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k], spec);
}

function paramRows(spec, op) {
  const rows = [];
  for (const p of op.parameters || []) {
    rows.push([p.name, p.in, schemaType(spec, p.schema), p.description || (p.schema && p.schema.description) || ""]);
  }
  const body = op.requestBody && op.requestBody.content;
  for (const [media, content] of Object.entries(body || {})) {
    let schema = content.schema || {};
    if (schema.$ref) schema = resolve(spec, schema.$ref);
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const dflt = prop.default !== undefined ? ` (default ${JSON.stringify(prop.default)})` : "";
      rows.push([name + (required.has(name) ? " *" : ""), media, schemaType(spec, prop), (prop.description || "") + dflt]);
    }
  }
  return rows;
}

async function main() {
  const target = document.getElementById("ops");
  let spec;
  try {
    const res = await fetch("/openapi.json");
    spec = await res.json();
  } catch (err) {
    target.textContent = `Cannot load /openapi.json: ${err.message}`;
    return;
  }
  target.replaceChildren();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const m = method.toUpperCase();
      const rows = paramRows(spec, op);
      const table = rows.length
        ? el("table", {}, el("tr", {}, ...["name", "in", "type", "description"].map((h) => el("th", {}, h))),
          ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))))
        : null;
      const codes = Object.keys(op.responses || {}).join(", ");
      target.append(el("div", { className: "op" },
        el("div", {}, el("span", { className: `method ${m}` }, m), el("code", {}, path), " ", el("strong", {}, op.summary || "")),
        op.description ? el("p", {}, op.description) : null,
        table,
        el("p", { className: "muted" }, `responses: ${codes}; errors as {"error": "..."}`)));
    }
  }
}

main();
