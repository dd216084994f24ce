//! The source bundle EB runs: a `Dockerrun.aws.json` (version 1) naming the image by digest,
//! stored under a content-addressed S3 key, and the version label derived from it.

use serde_json::json;
use sha2::{Digest, Sha256};

/// An application version to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `Dockerrun.aws.json` bytes.
    pub body: Vec<u8>,
    /// S3 key: `klue/<application>/<sha256 of body, 16 hex>/Dockerrun.aws.json`.
    pub key: String,
    /// The application version label: `<version>-<first 12 hex of the image digest>`.
    pub label: String,
    /// The version's description (the image reference).
    pub description: String,
}

impl Bundle {
    /// The bundle for `image` (`registry/repository@sha256:...`) built from service `version`.
    pub fn new(application: &str, version: &str, image: &str, container_port: u16) -> Bundle {
        let dockerrun = json!({
            "AWSEBDockerrunVersion": "1",
            "Image": { "Name": image, "Update": "true" },
            "Ports": [ { "ContainerPort": container_port } ],
        });
        // serde_json's map is ordered (BTreeMap without `preserve_order`): the bytes, and so the
        // key, are the same for the same inputs.
        let mut body = serde_json::to_vec_pretty(&dockerrun).unwrap_or_default();
        body.push(b'\n');
        let hash = hex(&Sha256::digest(&body));
        let digest_hex = image
            .rsplit_once("@sha256:")
            .map(|(_, hex)| hex)
            .unwrap_or(&hash);
        let short: String = digest_hex.chars().take(12).collect();
        Bundle {
            key: format!("klue/{application}/{}/Dockerrun.aws.json", &hash[..16]),
            label: format!("{version}-{short}"),
            description: truncate(&format!("klue image {image}"), 200),
            body,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/klue/hello@sha256:da7fa8f7c3e1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";

    #[test]
    fn dockerrun_v1_names_the_image_by_digest_and_the_port() {
        let b = Bundle::new("klue-hello", "0.1.0", IMAGE, 8080);
        let v: serde_json::Value = serde_json::from_slice(&b.body).unwrap_or_default();
        assert_eq!(v["AWSEBDockerrunVersion"], "1");
        assert_eq!(v["Image"]["Name"], IMAGE);
        assert_eq!(v["Ports"][0]["ContainerPort"], 8080);
        assert_eq!(b.label, "0.1.0-da7fa8f7c3e1");
    }

    #[test]
    fn the_key_is_content_addressed() {
        let a = Bundle::new("klue-hello", "0.1.0", IMAGE, 8080);
        let same = Bundle::new("klue-hello", "0.1.0", IMAGE, 8080);
        let other_port = Bundle::new("klue-hello", "0.1.0", IMAGE, 9090);
        assert_eq!(a.key, same.key);
        assert_ne!(a.key, other_port.key);
        assert!(a.key.starts_with("klue/klue-hello/"));
        assert!(a.key.ends_with("/Dockerrun.aws.json"));
    }
}
