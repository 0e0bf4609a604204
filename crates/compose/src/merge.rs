//! Merging normalised files (`-f a.yaml -f b.yaml`) and `extends`, with the Compose
//! Specification's rules: mappings merge key by key, `volumes` merge by target, lists
//! of values (`ports`, `expose`, `dns`, ...) are unions, commands and other scalars are
//! replaced.

use serde_json::{Map, Value};

/// Service keys whose lists are unions of both sides.
const UNION: &[&str] = &[
    "ports",
    "expose",
    "external_links",
    "dns",
    "dns_search",
    "dns_opt",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "security_opt",
    "volumes_from",
    "devices",
    "links",
    "profiles",
    "extra_hosts",
    "group_add",
    "configs",
    "secrets",
    "device_cgroup_rules",
];

/// `over` merged onto `base` (a service).
pub fn service(base: &Value, over: &Value) -> Value {
    let (Some(b), Some(o)) = (base.as_object(), over.as_object()) else {
        return over.clone();
    };
    let mut out = b.clone();
    for (k, v) in o {
        let merged = match (out.get(k), v) {
            (Some(Value::Array(a)), Value::Array(c)) if k == "volumes" => by_target(a, c),
            (Some(Value::Array(a)), Value::Array(c)) if UNION.contains(&k.as_str()) => union(a, c),
            (Some(Value::Object(_)), Value::Object(_)) if k != "command" && k != "entrypoint" => {
                deep(&out[k], v)
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

/// Mappings merged recursively; anything else replaced (a healthcheck's `test` too).
pub fn deep(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out: Map<String, Value> = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) if existing.is_object() && v.is_object() => deep(existing, v),
                    _ => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => over.clone(),
    }
}

fn union(a: &[Value], b: &[Value]) -> Value {
    let mut out = a.to_vec();
    for v in b {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Value::Array(out)
}

fn by_target(a: &[Value], b: &[Value]) -> Value {
    let mut out = a.to_vec();
    for v in b {
        match out.iter_mut().find(|x| x["target"] == v["target"]) {
            Some(slot) => *slot = v.clone(),
            None => out.push(v.clone()),
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_specs_rules() {
        let base = json!({
            "image": "app:1", "command": ["a"], "environment": {"A": "1", "B": "2"},
            "ports": [{"target": 80}], "volumes": [{"target": "/d", "source": "x"}],
            "healthcheck": {"test": ["CMD", "a"], "retries": 3}
        });
        let over = json!({
            "image": "app:2", "command": ["b"], "environment": {"B": "3"},
            "ports": [{"target": 80}, {"target": 443}],
            "volumes": [{"target": "/d", "source": "y"}, {"target": "/e"}],
            "healthcheck": {"test": ["CMD", "b"]}
        });
        let m = service(&base, &over);
        assert_eq!(m["image"], "app:2");
        assert_eq!(m["command"], json!(["b"]));
        assert_eq!(m["environment"], json!({"A": "1", "B": "3"}));
        assert_eq!(m["ports"], json!([{"target": 80}, {"target": 443}]));
        assert_eq!(
            m["volumes"],
            json!([{"target": "/d", "source": "y"}, {"target": "/e"}])
        );
        assert_eq!(
            m["healthcheck"],
            json!({"test": ["CMD", "b"], "retries": 3})
        );
    }
}
