//! Container events, with the attributes dockerd gives them: the container's labels,
//! its image and its name.

use berth_events::{Event, kind};

use crate::{ContainerRecord, ContainerService};

impl ContainerService {
    /// The bus this service emits on, for the services around it.
    pub fn events(&self) -> &berth_events::Events {
        &self.events
    }

    /// An event about `rec`, ready for more attributes.
    pub(crate) fn event(&self, rec: &ContainerRecord, action: &str) -> Event {
        Event::new(kind::CONTAINER, action, &rec.id)
            .labels(&rec.config["Labels"])
            .attr("image", &rec.image)
            .attr("name", &rec.name)
    }

    /// dockerd's exec events: `exec_create: sh -c date` with the exec's id.
    pub(crate) fn exec_event(
        &self,
        rec: &ContainerRecord,
        action: &str,
        exec: &crate::ExecRecord,
    ) -> Event {
        let cmd: Vec<&str> = exec.config["Cmd"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        let action = match action {
            "exec_die" => action.to_string(),
            _ => format!("{action}: {}", cmd.join(" ")),
        };
        self.event(rec, &action).attr("execID", &exec.id)
    }

    /// Emits `action` about `rec` (berthd's API layer emits `attach` this way).
    pub fn emit(&self, rec: &ContainerRecord, action: &str) {
        self.events.emit(self.event(rec, action));
    }

    /// A client detached from the container (`detach`) or from one of its execs
    /// (`exec_detach`, with the exec's id), as dockerd reports it.
    pub fn emit_detach(&self, container: &str, exec_id: Option<&str>) {
        let Ok(rec) = self.get(container) else {
            return;
        };
        let event = match exec_id {
            None => self.event(&rec, "detach"),
            Some(id) => self.event(&rec, "exec_detach").attr("execID", id),
        };
        self.events.emit(event);
    }
}
