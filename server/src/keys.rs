//! ES256 signing keys for the tokens this server issues (the development provider's ID and access
//! tokens, and credentials-mode tokens), published as a JWKS.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use p256::pkcs8::EncodePrivateKey;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// One P-256 key pair with its key id.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A fresh key pair (development servers start with a new one each run).
    pub fn generate(kid: &str) -> Self {
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let der = secret.to_pkcs8_der().expect("a P-256 key encodes");
        let public: Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).expect("JWK JSON");
        let mut jwk = public;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        let parsed: Jwk = serde_json::from_value(jwk.clone()).expect("our JWK parses");
        SigningKey {
            kid: kid.to_string(),
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            decoding: DecodingKey::from_jwk(&parsed).expect("our JWK is a key"),
            jwk,
        }
    }

    /// Signs `claims` as a compact JWT.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("ES256 signing works")
    }

    /// Verifies a token this key signed.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.decoding, validation).map(|d| d.claims)
    }

    /// `{"keys": [...]}` for the jwks_uri.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }
}
