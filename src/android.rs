//! Android only: the JNI entry `SyncVaultAndroid.init(context)` calls. reqwest checks server
//! certificates with rustls-platform-verifier, which asks Android's trust manager through the JVM
//! and so needs the application Context once per process.

use std::sync::atomic::{AtomicBool, Ordering};

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};

use crate::ffi::SyncError;

static VERIFIER_READY: AtomicBool = AtomicBool::new(false);

/// A `SyncClient` made before `SyncVaultAndroid.init` would fail every HTTPS request later with
/// a panic deep in the verifier; say what to do at construction instead.
pub(crate) fn require_init() -> Result<(), SyncError> {
    if VERIFIER_READY.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(SyncError::InvalidInput {
            reason: concat!(
                "call SyncVaultAndroid.init(context) in Application.onCreate ",
                "before creating a SyncClient"
            )
            .into(),
        })
    }
}

/// `dev.syncvault.android.SyncVaultAndroid.initPlatformVerifier(Context)`. A JNI failure or a
/// panic becomes a Java `RuntimeException`, never an unwind into the JVM.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_syncvault_android_SyncVaultAndroid_initPlatformVerifier<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    unowned_env
        .with_env(|env| {
            rustls_platform_verifier::android::init_with_env(env, context)?;
            VERIFIER_READY.store(true, Ordering::Release);
            Ok::<_, jni::errors::Error>(())
        })
        .resolve::<ThrowRuntimeExAndDefault>();
}
