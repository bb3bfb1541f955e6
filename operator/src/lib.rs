//! The ahlt operator: reconciles `AhltEnvironment` resources.
