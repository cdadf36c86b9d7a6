// Values read from a log file's path: `/var/log/{service}/*.log` names the service after the folder a
// file sits in. `{name}` captures one path segment (or part of one), `*` matches within a segment,
// `**` across segments. A template that does not start with `/` matches the end of the path.
export type PathCaptures = (file: string) => Record<string, string> | null;

export function compilePathTemplate(template: string): PathCaptures {
  const names: string[] = [];
  let re = template.startsWith("/") ? "^" : "(?:^|/)";
  for (let i = 0; i < template.length; i++) {
    const c = template[i] as string;
    if (c === "{") {
      const close = template.indexOf("}", i);
      const name = close === -1 ? "" : template.slice(i + 1, close);
      if (!/^[A-Za-z_][\w]*$/.test(name)) throw new Error(pathTemplateError(template, `"{${name}" is not {name}`));
      if (names.includes(name)) throw new Error(pathTemplateError(template, `{${name}} appears twice`));
      names.push(name);
      re += `(?<${name}>[^/]+?)`;
      i = close;
    } else if (c === "*") {
      if (template[i + 1] === "*") {
        re += ".*";
        i++;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^$()|[\]\\]/g, "\\$&");
  }
  if (names.length === 0) throw new Error(pathTemplateError(template, "it captures nothing"));
  const compiled = new RegExp(`${re}$`);
  return (file) => {
    const m = compiled.exec(file);
    return m === null ? null : { ...(m.groups as Record<string, string>) };
  };
}

function pathTemplateError(template: string, why: string): string {
  return `pathTemplate ${JSON.stringify(template)}: ${why}; write it like /var/log/{service}/*.log`;
}
