//! Safe wrappers over libclang. Every `unsafe` libclang call of the project lives here.
