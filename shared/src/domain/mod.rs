//! The users domain: types that can only hold valid values ("parse, don't validate"). Past the first
//! lines of a handler, code only sees these.

mod email;
pub mod login_limit;
mod password;
mod session;
mod user;

pub use email::{Email, InvalidEmail};
pub use login_limit::{ClientAddress, CounterKey, Limit, LoginCounters, LoginLimit, Window};
pub use password::{HashError, MEMORY_KIB, Password, PasswordHash, PasswordHasher, PasswordRules};
pub use session::{NoRandomness, SESSION_TTL, Session, SessionToken, TokenHash};
pub use user::{NewUser, User, UserId, UserName, UserView};
