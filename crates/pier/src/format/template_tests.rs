//! Tests of the Go template evaluator.
use super::*;
use serde_json::json;

fn r(t: &str, v: &Value) -> String {
    Template::parse(t).unwrap().render(v).unwrap()
}

#[test]
fn fields_and_text() {
    let v = json!({"State": {"Running": true, "Pid": 42}, "Name": "/web"});
    assert_eq!(r("{{.State.Running}}", &v), "true");
    assert_eq!(
        r("pid={{.State.Pid}} name={{.Name}}", &v),
        "pid=42 name=/web"
    );
    assert_eq!(r("{{.Nope}}", &v), "<no value>");
    assert_eq!(r("{{.State.Nope.X}}", &v), "<no value>");
    assert_eq!(r("{{json .Nope}}", &v), "null");
}

#[test]
fn json_index_join() {
    let v = json!({"Config": {"Labels": {"k": "v", "a": "b"}, "Env": ["A=1", "B=2"]}});
    assert_eq!(r("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
    assert_eq!(r(r#"{{index .Config.Labels "k"}}"#, &v), "v");
    assert_eq!(r(r#"{{join .Config.Env ","}}"#, &v), "A=1,B=2");
    assert_eq!(r("{{.Config.Labels}}", &v), "map[a:b k:v]");
    assert_eq!(r("{{.Config.Env}}", &v), "[A=1 B=2]");
    assert_eq!(r("{{index .Config.Env 1}}", &v), "B=2");
}

#[test]
fn functions_and_pipes() {
    let v = json!({"Name": "Web", "N": 3});
    assert_eq!(r("{{upper .Name}}", &v), "WEB");
    assert_eq!(r("{{.Name | lower}}", &v), "web");
    assert_eq!(r("{{println .Name}}", &v), "Web\n");
    assert_eq!(r("{{title \"hello world\"}}", &v), "Hello World");
    assert_eq!(r("{{printf \"%s-%d\" .Name .N}}", &v), "Web-3");
    assert_eq!(r("{{len .Name}}", &v), "3");
    assert_eq!(r("{{pad .Name 1 2}}|", &v), " Web  |");
    assert_eq!(r("{{truncate .Name 2}}", &v), "We");
    assert_eq!(r("{{(index (split \"a:b\" \":\") 1)}}", &v), "b");
}

#[test]
fn control_flow() {
    let v = json!({"Up": false, "Items": ["a", "b"], "M": {"y": 2, "x": 1}, "S": {"T": "t"}});
    assert_eq!(r("{{if .Up}}up{{else}}down{{end}}", &v), "down");
    assert_eq!(r("{{if .Up}}1{{else if .Items}}2{{else}}3{{end}}", &v), "2");
    assert_eq!(r("{{range .Items}}[{{.}}]{{end}}", &v), "[a][b]");
    assert_eq!(
        r("{{range $i, $e := .Items}}{{$i}}={{$e}} {{end}}", &v),
        "0=a 1=b "
    );
    assert_eq!(
        r("{{range $k, $v := .M}}{{$k}}:{{$v}};{{end}}", &v),
        "x:1;y:2;"
    );
    assert_eq!(r("{{range .Nope}}x{{else}}empty{{end}}", &v), "empty");
    assert_eq!(r("{{with .S}}{{.T}}{{end}}", &v), "t");
    assert_eq!(r("{{if eq .S.T \"t\"}}yes{{end}}", &v), "yes");
    assert_eq!(r("{{if and .Items (not .Up)}}ok{{end}}", &v), "ok");
    assert_eq!(r("{{$x := .S.T}}{{$x}}{{$.S.T}}", &v), "tt");
    assert_eq!(r("{{range .Items}}{{$.S.T}}{{end}}", &v), "tt");
}

#[test]
fn trim_markers_and_comments() {
    let v = json!({"A": "a"});
    assert_eq!(r("x  {{- .A -}}  y", &v), "xay");
    assert_eq!(r("{{/* note */}}{{.A}}", &v), "a");
}

#[test]
fn methods_via_hook() {
    let v = json!({"Labels": "a=1,b=2"});
    let hook = |dot: &Value, name: &str, args: &[Value]| -> Option<Value> {
        if name == "Label" {
            let want = args.first()?.as_str()?.to_string();
            let labels = dot.get("Labels")?.as_str()?.to_string();
            return Some(Value::String(
                labels
                    .split(',')
                    .find_map(|kv| {
                        kv.split_once('=')
                            .filter(|(k, _)| *k == want)
                            .map(|(_, v)| v.to_string())
                    })
                    .unwrap_or_default(),
            ));
        }
        None
    };
    let t = Template::parse(r#"{{.Label "b"}}"#).unwrap();
    assert_eq!(t.render_with(&v, &hook).unwrap(), "2");
}

#[test]
fn errors() {
    assert!(Template::parse("{{if .A}}x").is_err());
    assert!(Template::parse("{{end}}").is_err());
    assert!(Template::parse("{{.A").is_err());
    assert!(Template::parse("{{nosuch .A}}")
        .unwrap()
        .render(&json!({}))
        .is_err());
}
