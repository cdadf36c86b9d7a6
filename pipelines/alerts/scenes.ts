// The business scenes: which services each covers, who is on duty for it and its runbook (SOP), and the
// receivers alerts go to (webhooks). A small YAML file (scenes.yaml) validated with zod; mistakes are
// reported with file, line and field. Alerts of a service that no scene lists belong to `other`.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig } from "../../schemas/config/yaml-config.ts";

export const DEFAULT_SCENES_FILE = fileURLToPath(new URL("scenes.yaml", import.meta.url));
export const SCENES_FILE_ENV = "WEIR_ALERTS_SCENES_FILE";
export const OTHER_SCENE = "other";

const Name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "lowercase letters, digits and . _ - (at most 64)");
const Url = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/\S+$/, "an http(s) URL");

const Person = z.strictObject({
  name: z.string().min(1).max(128),
  role: z.string().max(64).optional(),
  /** How to reach them (a chat handle, a phone bridge's name): shown on the page, never a secret. */
  contact: z.string().max(256).optional(),
});

const Scene = z.strictObject({
  name: z.string().min(1).max(128),
  services: z.array(z.string().min(1).max(128)).min(1, "list the services this scene covers").max(1000),
  runbook: Url.optional(),
  onDuty: z.array(Name).max(50).default([]),
});

const Receiver = z
  .strictObject({
    name: Name,
    format: z.enum(["generic", "alertmanager"]),
    url: Url.optional(),
    /** The environment variable holding the URL (a URL with a secret in it stays out of the file). */
    urlEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable's name")
      .optional(),
    /** Only these scenes' alerts (default: every scene). */
    scenes: z.array(Name).optional(),
    /** Only these severities (default: both). */
    severities: z.array(z.enum(["PAGE", "TICKET"])).optional(),
    timeout: z.number().int().positive().max(60_000).default(5000),
    retries: z.number().int().min(0).max(20).default(5),
  })
  .refine((r) => (r.url === undefined) !== (r.urlEnv === undefined), "give exactly one of url and urlEnv");

export const ScenesFileSchema = z
  .strictObject({
    scenes: z.record(Name, Scene),
    people: z.record(Name, Person).default({}),
    receivers: z.array(Receiver).max(50).default([]),
  })
  .superRefine((f, ctx) => {
    const owner = new Map<string, string>();
    for (const [id, s] of Object.entries(f.scenes)) {
      if (id === OTHER_SCENE)
        ctx.addIssue({
          code: "custom",
          path: ["scenes", id],
          message: `${OTHER_SCENE} is kept for services in no scene`,
        });
      s.onDuty.forEach((p, i) => {
        if (!(p in f.people))
          ctx.addIssue({ code: "custom", path: ["scenes", id, "onDuty", i], message: `no person ${p} under people` });
      });
      s.services.forEach((svc, i) => {
        const other = owner.get(svc);
        if (other !== undefined)
          ctx.addIssue({
            code: "custom",
            path: ["scenes", id, "services", i],
            message: `${svc} is in scene ${other} already`,
          });
        owner.set(svc, id);
      });
    }
    f.receivers.forEach((r, i) => {
      for (const s of r.scenes ?? [])
        if (!(s in f.scenes) && s !== OTHER_SCENE)
          ctx.addIssue({ code: "custom", path: ["receivers", i, "scenes"], message: `no scene ${s}` });
    });
  });

export type ScenesFile = z.output<typeof ScenesFileSchema>;
export type ReceiverConfig = ScenesFile["receivers"][number];

export interface OnDutyPerson {
  id: string;
  name: string;
  role?: string;
  contact?: string;
}

/** A scene as the console and the notifier show it. */
export interface SceneView {
  id: string;
  name: string;
  services: string[];
  runbook: string | null;
  onDuty: OnDutyPerson[];
}

export class Scenes {
  private readonly byService = new Map<string, string>();
  private readonly views = new Map<string, SceneView>();

  constructor(
    readonly file: ScenesFile,
    readonly source = "scenes",
  ) {
    for (const [id, s] of Object.entries(file.scenes)) {
      for (const svc of s.services) this.byService.set(svc, id);
      this.views.set(id, {
        id,
        name: s.name,
        services: [...s.services],
        runbook: s.runbook ?? null,
        onDuty: s.onDuty.map((p) => ({ id: p, ...(file.people[p] as z.output<typeof Person>) })),
      });
    }
    this.views.set(OTHER_SCENE, { id: OTHER_SCENE, name: "Other services", services: [], runbook: null, onDuty: [] });
  }

  static parse(text: string, file = "scenes.yaml"): Scenes {
    const { value, locate } = parseYamlConfig(file, text);
    return new Scenes(validateConfig(file, ScenesFileSchema, value, locate), file);
  }

  static load(path = DEFAULT_SCENES_FILE): Scenes {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new ConfigError(path, [{ line: 0, column: 0, field: "", message: `cannot read: ${(e as Error).message}` }]);
    }
    return Scenes.parse(text, path);
  }

  /** The scene of a service (`other` when none lists it). */
  sceneOf(service: string): string {
    return this.byService.get(service) ?? OTHER_SCENE;
  }

  view(id: string): SceneView {
    return this.views.get(id) ?? (this.views.get(OTHER_SCENE) as SceneView);
  }

  /** Every scene, `other` last. */
  all(): SceneView[] {
    return [...this.views.values()];
  }
}
