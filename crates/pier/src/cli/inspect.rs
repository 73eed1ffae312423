//! `pier inspect`, `pier container inspect`, `pier image inspect`.

use super::{print, Exit};
use crate::format::template::Template;
use anyhow::Result;
use clap::Args;
use pier_client::{Client, ClientError};
use serde::Serialize;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub typ: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl TypedInspectArgs {
    pub fn into_inspect(self, typ: &str) -> InspectArgs {
        InspectArgs {
            format: self.format,
            size: self.size,
            typ: Some(typ.to_string()),
            names: self.names,
        }
    }
}

/// Go's `json.MarshalIndent(v, "", "    ")`, HTML-escaping included.
pub fn go_json_indent<T: Serialize>(v: &T) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    let s = String::from_utf8(buf)?;
    // These characters only occur inside JSON strings, so a plain replace is exact.
    Ok(s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

async fn fetch(
    client: &Client,
    typ: Option<&str>,
    name: &str,
    size: bool,
) -> Result<Value, ClientError> {
    let container = || async {
        let q = if size { "?size=1" } else { "" };
        client
            .get_json::<Value>(&format!("/containers/{name}/json{q}"))
            .await
    };
    let image = || async {
        client
            .get_json::<Value>(&format!("/images/{name}/json"))
            .await
    };
    match typ {
        Some("container") => container().await,
        Some("image") => image().await,
        Some("network") => client.get_json(&format!("/networks/{name}")).await,
        Some("volume") => client.get_json(&format!("/volumes/{name}")).await,
        Some(other) => Err(ClientError::Protocol(format!(
            "\"{other}\" is not a valid value for --type"
        ))),
        None => match container().await {
            Err(e) if e.is_not_found() => match image().await {
                Err(e) if e.is_not_found() => Err(ClientError::Protocol(format!(
                    "Error: No such object: {name}"
                ))),
                other => other,
            },
            other => other,
        },
    }
}

/// What `inspect` prints for the objects found: each through the template,
/// or all of them as one indented JSON array (`[]` when none was found).
pub fn render_inspect(results: &[Value], format: Option<&str>) -> Result<String> {
    let mut out = String::new();
    match format.filter(|f| !f.is_empty() && *f != "json") {
        Some(f) => {
            let t = Template::parse(f)?;
            for r in results {
                out.push_str(&t.render(r)?);
                out.push('\n');
            }
        }
        None => {
            out.push_str(&go_json_indent(&results)?);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Docker's line for a name that matched nothing.
pub fn not_found_line(typ: Option<&str>, name: &str) -> String {
    format!("Error: No such {}: {name}", typ.unwrap_or("object"))
}

pub async fn inspect(client: &Client, a: InspectArgs) -> Result<i32> {
    // A bad template fails before anything is fetched.
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
    {
        Template::parse(f)?;
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match fetch(client, a.typ.as_deref(), n, a.size).await {
            Ok(v) => results.push(v),
            Err(ClientError::Daemon { status: 404, .. }) => {
                errors.push(not_found_line(a.typ.as_deref(), n));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    print(&render_inspect(&results, a.format.as_deref())?);
    if !errors.is_empty() {
        for e in errors {
            eprintln!("{e}");
        }
        return Err(Exit(1).into());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indent_like_go() {
        let v = vec![json!({"Id": "x", "Cmd": ["echo <a> & b"], "Empty": [], "Obj": {}})];
        assert_eq!(
            go_json_indent(&v).unwrap(),
            "[\n    {\n        \"Id\": \"x\",\n        \"Cmd\": [\n            \"echo \\u003ca\\u003e \\u0026 b\"\n        ],\n        \"Empty\": [],\n        \"Obj\": {}\n    }\n]"
        );
        assert_eq!(go_json_indent(&Vec::<Value>::new()).unwrap(), "[]");
    }
}
