//! Android only: the JNI entry `SyncVaultAndroid.init(context)` calls. reqwest checks server
//! certificates with rustls-platform-verifier, which asks Android's trust manager through the JVM
//! and so needs the application Context once per process.

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};

/// `dev.syncvault.android.SyncVaultAndroid.initPlatformVerifier(Context)`. A JNI failure or a
/// panic becomes a Java `RuntimeException`, never an unwind into the JVM.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_syncvault_android_SyncVaultAndroid_initPlatformVerifier<'caller>(
    mut unowned_env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    unowned_env
        .with_env(|env| rustls_platform_verifier::android::init_with_env(env, context))
        .resolve::<ThrowRuntimeExAndDefault>();
}
