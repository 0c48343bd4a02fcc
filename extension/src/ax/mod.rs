//! The accessibility tree of a tab, seen as a filesystem.
//!
//! Input is what CDP returns (`cdp`: `Accessibility.AXNode` lists for the main frame and for
//! each child frame, same-process or out-of-process). The mapping (`vfs`) turns container
//! roles into directories, interactive roles into `[x]` files and everything else into `[-]`
//! files; flattens ignored, presentational and unnamed generic wrappers; stitches each
//! child frame's tree under its owning `Iframe`; and names entries from their accessible
//! names (`naming`, Unicode-aware, role suffixes, per-directory de-duplication that keeps
//! names stable across reads of an unchanged page) and `names` remembers which element holds
//! which name while a document lives, so a name never moves to another element. Paths (`paths`) resolve `/`, `~`,
//! relative paths, `..`, `%here%` and `@bookmark`; `listing` selects entries for `ls`/`find`.
//!
//! Plain Rust and serde only: no browser bindings, no I/O, no clock. The kernel fetches nodes
//! (full tree, or a directory's children on demand), hands them in, and formats the output.

pub mod cdp;
pub mod listing;
pub mod names;
pub mod naming;
pub mod paths;
pub mod roles;
mod store;
pub mod vfs;

pub use cdp::{AxNode, AxProperty, AxValue, ChildFrame, FrameNodes, PageSnapshot};
pub use listing::{Counts, FindQuery, Found, ListError, ListOptions, ListPage, TypeFilter};
pub use names::NameBook;
pub use paths::{PathContext, PathError, Resolved};
pub use roles::EntryKind;
pub use store::NodeRef;
pub use vfs::{Entry, EntryId, FormerName, MapError, Mapping, Update, Vfs, MAX_ENTRIES};
