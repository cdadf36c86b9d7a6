import { Command } from "commander";
import { writeGeneratedTypes } from "../../schemas/codegen.ts";
import { checkRegistry, releaseSchemas, unreleased } from "../../schemas/compatibility.ts";
import { SchemaRegistry } from "../../schemas/registry.ts";
import { printTable } from "../table.ts";

export function schemasCommand(): Command {
  const schemas = new Command("schemas").description(
    "the Avro schemas in schemas/avro, their kept versions and the compatibility gate",
  );

  schemas
    .command("list")
    .description("each schema: full name, fingerprint, kept versions, and whether the current file is released")
    .action(() => {
      const registry = SchemaRegistry.load();
      printTable(
        ["SCHEMA", "FULL NAME", "FINGERPRINT", "VERSIONS", "CURRENT"],
        registry.names().map((name) => {
          const current = registry.current(name);
          const kept = registry.history(name).map((h) => `v${h.version}`);
          return [
            name,
            current.fullName,
            current.fingerprint.toString(16).padStart(16, "0"),
            kept.join(" ") || "-",
            current.version ? `= v${current.version}` : "UNRELEASED",
          ];
        }),
      );
    });

  schemas
    .command("check")
    .description("the gate: every current schema must read and be read by every kept version")
    .action(() => {
      const registry = SchemaRegistry.load();
      const problems = checkRegistry(registry);
      for (const p of problems)
        console.log(`${p.schema}: ${p.direction} incompatible with v${p.against}: ${p.message}`);
      const pending = unreleased(registry);
      if (pending.length > 0) console.log(`changed but not released (run weir schemas release): ${pending.join(", ")}`);
      if (problems.length === 0)
        console.log(`compatible: ${registry.names().length} schemas against all their kept versions`);
      if (problems.length > 0) process.exitCode = 1;
    });

  schemas
    .command("release")
    .description("keep each changed schema as its next version in schemas/history (refused while the gate fails)")
    .action(() => {
      const result = releaseSchemas(SchemaRegistry.load());
      for (const p of result.problems)
        console.log(`${p.schema}: ${p.direction} incompatible with v${p.against}: ${p.message}`);
      if (result.problems.length > 0) {
        console.log(
          "nothing released: make the change compatible (defaults on added and removed fields, no type changes)",
        );
        process.exitCode = 1;
        return;
      }
      for (const r of result.released) console.log(`released ${r.name} v${r.version} (${r.file})`);
      if (result.released.length === 0) console.log("nothing to release: every schema equals its newest kept version");
      console.log(`wrote ${writeGeneratedTypes()}`);
    });

  schemas
    .command("gen")
    .description("regenerate the TypeScript types (schemas/types.generated.ts) from the schemas")
    .action(() => console.log(`wrote ${writeGeneratedTypes()}`));

  return schemas;
}
