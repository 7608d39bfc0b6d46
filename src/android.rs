//! Android only: the JNI entry `SyncVaultAndroid.init(context)` calls. reqwest checks server
//! certificates with rustls-platform-verifier, which asks Android's trust manager through the JVM
//! and so needs the application Context once per process.

use std::sync::atomic::{AtomicBool, Ordering};

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};

use crate::ffi::{ClientOptions, SyncError};

static VERIFIER_READY: AtomicBool = AtomicBool::new(false);

/// Refuses, at construction, what would otherwise fail every HTTPS request later: a client made
/// before `SyncVaultAndroid.init`, or extra CA certificates, which Android's verifier does not take
/// (the app's network security config is where Android apps add trust anchors).
pub(crate) fn check_options(options: &ClientOptions) -> Result<(), SyncError> {
    if !VERIFIER_READY.load(Ordering::Acquire) {
        return Err(SyncError::InvalidInput {
            reason: concat!(
                "call SyncVaultAndroid.init(context) in Application.onCreate ",
                "before creating a SyncClient"
            )
            .into(),
        });
    }
    if !options.extra_root_certificates_pem.is_empty() {
        return Err(SyncError::InvalidInput {
            reason: concat!(
                "on Android, trust extra CAs through the app's network security config ",
                "(trust-anchors), not extra_root_certificates_pem"
            )
            .into(),
        });
    }
    Ok(())
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
