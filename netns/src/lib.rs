//! netns workers
