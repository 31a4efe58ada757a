//! Domain profiles: how the assistant behaves for a field of work. The built-in ones are
//! defined here; tenant-defined profiles come with the profile administration calls.

/// A domain profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Stable id.
    pub id: &'static str,
    /// Name to show.
    pub display_name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Instructions given to the model first.
    pub system_prompt: &'static str,
    /// Model alias used when a conversation names none.
    pub default_model: &'static str,
}

/// The profile of conversations that name none.
pub const DEFAULT_PROFILE: &str = "general";

/// The profiles every tenant has.
pub const BUILTIN_PROFILES: [Profile; 5] = [
    Profile {
        id: "general",
        display_name: "General",
        description: "Everyday questions and writing.",
        system_prompt: "You are a helpful, precise assistant.",
        default_model: "default",
    },
    Profile {
        id: "health",
        display_name: "Health",
        description: "Clinical documentation and medical questions, for professionals.",
        system_prompt: "You assist healthcare professionals. Be accurate, cite uncertainty, \
                        and never present a diagnosis as certain.",
        default_model: "default",
    },
    Profile {
        id: "legal",
        display_name: "Legal",
        description: "Drafting and reviewing legal text.",
        system_prompt: "You assist legal professionals. Be precise about jurisdiction and \
                        say when something needs a qualified lawyer's review.",
        default_model: "default",
    },
    Profile {
        id: "finance",
        display_name: "Finance",
        description: "Financial analysis and reporting.",
        system_prompt: "You assist finance professionals. Show your calculations and state \
                        assumptions.",
        default_model: "default",
    },
    Profile {
        id: "developer",
        display_name: "Developer",
        description: "Software engineering: code, reviews, debugging.",
        system_prompt: "You are an expert software engineer. Prefer working code and short \
                        explanations.",
        default_model: "default",
    },
];

/// The built-in profile `id`, if there is one.
pub fn profile(id: &str) -> Option<&'static Profile> {
    BUILTIN_PROFILES.iter().find(|profile| profile.id == id)
}
