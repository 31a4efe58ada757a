//! AdminService's profile calls: the settings a `SetProfile` request asks for.

use crate::edge::ApiError;
use crate::{api::convert::phi_policy_of, chat::ProfileSettings, pb::v1 as pb};

/// The profile settings a `SetProfile` request asks for.
pub(super) fn settings_of(request: pb::SetProfileRequest) -> Result<ProfileSettings, ApiError> {
    let profile = request
        .profile
        .ok_or_else(|| ApiError::invalid("profile", "is required"))?;
    Ok(ProfileSettings {
        phi_policy: phi_policy_of(profile.phi_policy()),
        id: profile.id,
        display_name: profile.display_name,
        description: profile.description,
        system_prompt: request.system_prompt,
        default_model: profile.default_model,
        allowed_plugins: profile.allowed_plugins,
    })
}
