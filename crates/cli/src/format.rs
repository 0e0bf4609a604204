//! Output as the docker CLI prints it: `--format` Go templates with Docker's template
//! functions (`json`, `join`, `table`, `lower`, `upper`, `title`, `split`, `pad`,
//! `truncate`), tables aligned like Go's tabwriter with Docker's settings (minimum
//! width 10, padding 3), and human sizes and durations.

use std::io::Write;

use gotmpl::{Template, TemplateError, Value};
use serde_json::Value as Json;

pub use berth_types::units::{binary_size, human_size, human_size4};

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.to_string()),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        _ => Json::Null,
    }
}

fn arg_str(args: &[Value], i: usize, name: &str) -> gotmpl::Result<String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(v) => Ok(v.to_string()),
        None => Err(TemplateError::Exec(format!(
            "{name}: missing argument {}",
            i + 1
        ))),
    }
}

fn arg_int(args: &[Value], i: usize, name: &str) -> gotmpl::Result<usize> {
    match args.get(i) {
        Some(Value::Int(n)) => Ok((*n).max(0) as usize),
        Some(Value::Uint(n)) => Ok(*n as usize),
        _ => Err(TemplateError::Exec(format!(
            "{name}: argument {} must be a number",
            i + 1
        ))),
    }
}

/// A template with Docker's functions; errors read like the docker CLI's.
pub fn template(src: &str) -> Result<Template, String> {
    Template::new("")
        .func("json", |a: &[Value]| {
            let v = a.first().map(to_json).unwrap_or(Json::Null);
            Ok(Value::String(v.to_string().into()))
        })
        .func("join", |a: &[Value]| {
            let sep = arg_str(a, 1, "join")?;
            let items: Vec<String> = match a.first() {
                Some(Value::List(l)) => l.iter().map(|v| v.to_string()).collect(),
                Some(v) => vec![v.to_string()],
                None => Vec::new(),
            };
            Ok(Value::String(items.join(&sep).into()))
        })
        .func("lower", |a: &[Value]| {
            Ok(Value::String(arg_str(a, 0, "lower")?.to_lowercase().into()))
        })
        .func("upper", |a: &[Value]| {
            Ok(Value::String(arg_str(a, 0, "upper")?.to_uppercase().into()))
        })
        .func("title", |a: &[Value]| {
            let s = arg_str(a, 0, "title")?;
            let t: String = s
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ");
            Ok(Value::String(t.into()))
        })
        .func("split", |a: &[Value]| {
            let s = arg_str(a, 0, "split")?;
            let sep = arg_str(a, 1, "split")?;
            let parts: Vec<Value> = s
                .split(sep.as_str())
                .map(|p| Value::String(p.into()))
                .collect();
            Ok(Value::List(parts.into()))
        })
        .func("pad", |a: &[Value]| {
            let s = arg_str(a, 0, "pad")?;
            let (l, r) = (arg_int(a, 1, "pad")?, arg_int(a, 2, "pad")?);
            Ok(Value::String(
                format!("{}{s}{}", " ".repeat(l), " ".repeat(r)).into(),
            ))
        })
        .func("truncate", |a: &[Value]| {
            let s = arg_str(a, 0, "truncate")?;
            let n = arg_int(a, 1, "truncate")?;
            Ok(Value::String(s.chars().take(n).collect::<String>().into()))
        })
        .parse(src)
        .map_err(|e| format!("template parsing error: {e}"))
}

/// Renders `src` over one item.
pub fn render(src: &str, item: &Json) -> Result<String, String> {
    let t = template(src)?;
    let v = gotmpl::to_value(item).map_err(|e| e.to_string())?;
    t.execute_to_string(&v)
        .map_err(|e| format!("template: {e}"))
}

/// Prints rows for a list command: `format` is `None` (the command's default table), a
/// Go template, or `table <template>` (with a header from `headers`, which maps field
/// names to column titles).
pub fn print_list(
    out: &mut dyn Write,
    format: Option<&str>,
    default_table: &str,
    headers: &Json,
    items: &[Json],
) -> Result<(), String> {
    let fmt = format.filter(|f| !f.is_empty()).unwrap_or(default_table);
    let (table, body) = match fmt.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, fmt),
    };
    let body = body.replace("\\t", "\t");
    let t = template(&body)?;
    let mut text = String::new();
    if table {
        let hv = gotmpl::to_value(headers).map_err(|e| e.to_string())?;
        text.push_str(
            &t.execute_to_string(&hv)
                .map_err(|e| format!("template: {e}"))?,
        );
        text.push('\n');
    }
    for item in items {
        let v = gotmpl::to_value(item).map_err(|e| e.to_string())?;
        text.push_str(
            &t.execute_to_string(&v)
                .map_err(|e| format!("template: {e}"))?,
        );
        text.push('\n');
    }
    if table {
        let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
        let _ = tw.write_all(text.as_bytes());
        let _ = tw.flush();
        let aligned = tw.into_inner().unwrap_or_default();
        let _ = out.write_all(&aligned);
    } else {
        let _ = out.write_all(text.as_bytes());
    }
    Ok(())
}

/// Docker's "5 seconds ago" for a Unix time.
pub fn since(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!("{} ago", berth_types::time::human_duration(now - unix))
}

/// Labels as docker's tables show them: `k=v` pairs, sorted, comma-separated.
pub fn labels_text(labels: &Json) -> String {
    let mut l: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    l.sort();
    l.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(2_130_000.0), "2.13MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_500.0), "1.5kB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
    }

    #[test]
    fn tables_align_like_go_tabwriter() {
        let mut out = Vec::new();
        let items = vec![
            json!({"A": "x", "B": "longer value"}),
            json!({"A": "yyyyyyyyyyyy", "B": "z"}),
        ];
        print_list(
            &mut out,
            Some("table {{.A}}\t{{.B}}"),
            "",
            &json!({"A": "COL A", "B": "COL B"}),
            &items,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "COL A          COL B\nx              longer value\nyyyyyyyyyyyy   z\n"
        );
    }

    #[test]
    fn docker_template_functions() {
        let item = json!({"Names": ["a", "b"], "Name": "web", "Labels": {"k": "v"}});
        assert_eq!(render("{{join .Names \",\"}}", &item).unwrap(), "a,b");
        assert_eq!(
            render("{{upper .Name}} {{json .Labels}}", &item).unwrap(),
            "WEB {\"k\":\"v\"}"
        );
        assert_eq!(
            render("{{truncate .Name 2}}|{{pad .Name 1 1}}", &item).unwrap(),
            "we| web "
        );
    }
}
