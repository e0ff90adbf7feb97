//! Rules (who may reach what, on which protocol and ports) and policies (which rules apply to
//! which target servers), as the API shows and changes them.

use crate::rule::{PortSpec, Protocol};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: i32,
    pub name: String,
    pub destination_protocol: Protocol,
    pub destination_ports: PortSpec,
    pub source_users: Vec<i32>,
    pub source_groups: Vec<i32>,
    pub source_servers: Vec<i32>,
    pub source_servergroups: Vec<i32>,
}

/// A validated partial update (or, with the required fields, a creation) of a rule. The ports
/// stay text here: whether they are valid depends on the protocol the rule ends up with, which
/// only the stored rule and the patch together tell.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub name: Option<String>,
    pub destination_protocol: Option<Protocol>,
    pub destination_ports: Option<String>,
    pub source_users: Option<Vec<i32>>,
    pub source_groups: Option<Vec<i32>>,
    pub source_servers: Option<Vec<i32>>,
    pub source_servergroups: Option<Vec<i32>>,
}

impl RulePatch {
    /// The port spec of the rule this patch produces from `current` (or from nothing, on
    /// create): the patch's protocol and ports where given, the current ones otherwise.
    pub fn resulting_ports(
        &self,
        current: Option<&Rule>,
    ) -> Option<Result<(Protocol, PortSpec), String>> {
        let protocol = self
            .destination_protocol
            .or(current.map(|r| r.destination_protocol))?;
        let text = match (&self.destination_ports, current) {
            (Some(text), _) => text.clone(),
            (None, Some(rule)) => rule.destination_ports.to_string(),
            (None, None) => String::new(),
        };
        Some(PortSpec::parse(protocol, &text).map(|ports| (protocol, ports)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    pub rules: Vec<i32>,
    pub servers: Vec<i32>,
    pub servergroups: Vec<i32>,
}

#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub rules: Option<Vec<i32>>,
    pub servers: Option<Vec<i32>>,
    pub servergroups: Option<Vec<i32>>,
}

/// Rule and policy names: 1 to 200 characters.
pub fn name(value: &str) -> Result<String, String> {
    crate::validate::text(value, crate::server::NAME_MAX, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_rule() -> Rule {
        Rule {
            id: 1,
            name: "web".into(),
            destination_protocol: Protocol::Tcp,
            destination_ports: PortSpec::parse(Protocol::Tcp, "443,80").unwrap(),
            source_users: vec![],
            source_groups: vec![],
            source_servers: vec![],
            source_servergroups: vec![],
        }
    }

    #[test]
    fn ports_follow_the_resulting_protocol() {
        let current = tcp_rule();
        let to_icmp = RulePatch {
            destination_protocol: Some(Protocol::Icmp),
            ..RulePatch::default()
        };
        assert_eq!(
            to_icmp
                .resulting_ports(Some(&current))
                .unwrap()
                .unwrap_err(),
            "Ports can only be specified for destination protocols TCP or UDP"
        );
        let to_icmp_clearing = RulePatch {
            destination_protocol: Some(Protocol::Icmp),
            destination_ports: Some(String::new()),
            ..RulePatch::default()
        };
        assert!(to_icmp_clearing
            .resulting_ports(Some(&current))
            .unwrap()
            .is_ok());
        let rename = RulePatch {
            name: Some("x".into()),
            ..RulePatch::default()
        };
        let (protocol, ports) = rename.resulting_ports(Some(&current)).unwrap().unwrap();
        assert_eq!(
            (protocol, ports.to_string().as_str()),
            (Protocol::Tcp, "80,443")
        );
        assert!(
            RulePatch::default().resulting_ports(None).is_none(),
            "no protocol, nothing to check"
        );
    }
}
