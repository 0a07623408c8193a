//! The closed lists of names config.json spells as strings: namespace types, rlimits, seccomp
//! actions, architectures, flags and operators.
//!
//! Each list becomes an enum whose `Unknown` variant keeps, as written, a name the list does not
//! have (a typo, or a name a later runtime-spec added). Loading never fails on one: the shim
//! reads the config.json of every container, also of those runc runs, and runc judges what it
//! runs. The code that acts on a value refuses `Unknown`, naming the field and the value, with
//! the enum's `unknown_reason()` as the reason.

/// `spec_names! { Type, "what it is", { Variant = "SPELLING", ... } }`
macro_rules! spec_names {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal, { $($variant:ident = $text:literal,)+ }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
        #[serde(from = "String")]
        pub enum $name {
            $($variant,)+
            /// A name this list does not have, as config.json spells it (empty when absent).
            Unknown(String),
        }

        impl $name {
            /// Every name of the list, as config.json spells it.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// As config.json spells it.
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(name) => name,
                }
            }

            /// Why an `Unknown` name is refused (the caller names the field and the value).
            pub fn unknown_reason() -> String {
                format!(
                    concat!("not a ", $what, " runtime-spec defines (expected one of: {})"),
                    Self::NAMES.join(", ")
                )
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                match name.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Unknown(name),
                }
            }
        }

        /// An absent field reads as Go's zero value, the empty name, as runc reads it.
        impl Default for $name {
            fn default() -> Self {
                Self::Unknown(String::new())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use spec_names;
