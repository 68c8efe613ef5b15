//! Text files of the built-in assets: the Clara Train 3.x MMAR of
//! `nvidia/med/clara_train_covid19_3d_ct_classification` (layout from the Clara Train 3.1 MMAR
//! docs and NVIDIA/clara-train-examples), its Clara 4.x (PyTorch) successor, and the
//! walkthrough's `nvidia/med/getting_started` resource. Model weights are pseudo-random bytes
//! (see `catalog`).

use serde_json::{Value, json};

macro_rules! asset {
    ($dir:literal, $path:literal) => {
        (
            $path,
            include_str!(concat!("../../assets/ngc/", $dir, "/", $path)),
        )
    };
}

pub const COVID19_TEXT: &[(&str, &str)] = &[
    asset!("covid19_mmar", "commands/set_env.sh"),
    asset!("covid19_mmar", "commands/train.sh"),
    asset!("covid19_mmar", "commands/train_finetune.sh"),
    asset!("covid19_mmar", "commands/train_multigpu.sh"),
    asset!("covid19_mmar", "commands/infer.sh"),
    asset!("covid19_mmar", "commands/validate.sh"),
    asset!("covid19_mmar", "commands/export.sh"),
    asset!("covid19_mmar", "config/config_train.json"),
    asset!("covid19_mmar", "config/config_train_naturecomm.json"),
    asset!("covid19_mmar", "config/config_validation.json"),
    asset!("covid19_mmar", "config/environment.json"),
    asset!("covid19_mmar", "docs/license.txt"),
    asset!("covid19_mmar", "docs/Readme.md"),
    asset!("covid19_mmar", "resources/log.config"),
];

pub const GETTING_STARTED_TEXT: &[(&str, &str)] = &[
    asset!("getting_started", "README.md"),
    asset!("getting_started", "scripts/startDocker.sh"),
    asset!("getting_started", "scripts/stopDocker.sh"),
    asset!("getting_started", "scripts/download_data.sh"),
    asset!("getting_started", "notebooks/Welcome.ipynb"),
    asset!("getting_started", "notebooks/GettingStarted.ipynb"),
];

/// The walkthrough's quick-launch resource `nvidia/azuremlclarablogquicklaunch:example`: the
/// notebook and the scripts it calls.
pub const QUICKLAUNCH_TEXT: &[(&str, &str)] = &[
    asset!("quicklaunch", "README.md"),
    asset!("quicklaunch", "Clara_COVID19_CT_QuickLaunch.ipynb"),
    asset!("quicklaunch", "scripts/set_paths.sh"),
    asset!("quicklaunch", "scripts/download_data.sh"),
    asset!("quicklaunch", "scripts/finetune.sh"),
    asset!("quicklaunch", "scripts/infer.sh"),
    asset!("quicklaunch", "scripts/export.sh"),
];

/// Number of labelled studies in `dataset_0.json` and how they are split.
pub const DATASET_STUDIES: usize = 40;
pub const DATASET_VALIDATION: usize = 8;
pub const DATASET_HELD_OUT: usize = 3;

/// `config/dataset_0.json`: 40 labelled studies (20 COVID-19 from the TCIA "CT Images in
/// COVID-19" collection, 20 non-COVID from LIDC-IDRI), each with its lung mask:
/// 29 `training`, 8 `validation` and 3 held-out under `testing`.
pub fn covid_dataset_json() -> String {
    let studies: Vec<Value> = (0..DATASET_STUDIES)
        .map(|i| {
            // interleave classes so every split has both
            let covid = i % 2 == 0;
            let (image, mask) = if covid {
                let id = format!("volume-covid19-A-{:04}", 10 + i * 7);
                (
                    format!("covid19/images/{id}.nii.gz"),
                    format!("covid19/lung_masks/{id}_lungmask.nii.gz"),
                )
            } else {
                let id = format!("LIDC-IDRI-{:04}", 3 + i * 11);
                (
                    format!("lidc/images/{id}.nii.gz"),
                    format!("lidc/lung_masks/{id}_lungmask.nii.gz"),
                )
            };
            json!({ "image": image, "label_image": mask, "label": [u8::from(covid)] })
        })
        .collect();
    let training_n = DATASET_STUDIES - DATASET_VALIDATION - DATASET_HELD_OUT;
    let doc = json!({
        "description": "COVID-19 vs non-COVID chest CT classification (emulated listing; the images are not included)",
        "labels": { "0": "non-COVID", "1": "COVID" },
        "licence": "see docs/license.txt",
        "modality": { "0": "CT", "1": "lung mask" },
        "name": "covid19_ct_classification",
        "numTraining": training_n,
        "numValidation": DATASET_VALIDATION,
        "numTest": DATASET_HELD_OUT,
        "tensorImageSize": "3D",
        "training": &studies[..training_n],
        "validation": &studies[training_n..training_n + DATASET_VALIDATION],
        "testing": &studies[training_n + DATASET_VALIDATION..],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// Text files of the Clara Train 4.x (PyTorch) MMAR.
pub fn pt_text_files() -> Vec<(String, String)> {
    let script = |module: &str, config: &str, extra: &str| {
        format!(
            "#!/usr/bin/env bash\nmy_dir=\"$(dirname \"$0\")\"\n. $my_dir/set_env.sh\n\necho \"MMAR_ROOT set to $MMAR_ROOT\"\nadditional_options=\"$*\"\n\nCONFIG_FILE=config/{config}\nENVIRONMENT_FILE=config/environment.json\n\npython3 -u -m {module} \\\n    -m $MMAR_ROOT \\\n    -c $CONFIG_FILE \\\n    -e $ENVIRONMENT_FILE \\\n    --write_train_stats \\\n    --set \\\n    print_conf=True \\\n{extra}    ${{additional_options}}\n"
        )
    };
    let set_env = "#!/usr/bin/env bash\nDIR=\"$( cd \"$( dirname \"${BASH_SOURCE[0]}\" )\" >/dev/null 2>&1 && pwd )\"\nexport PYTHONPATH=\"$PYTHONPATH:/opt/nvidia:$DIR/../custom\"\nexport MMAR_ROOT=${DIR}/..\n";
    let env = json!({
        "DATA_ROOT": "/workspace/data/covid19",
        "DATASET_JSON": "config/dataset_0.json",
        "PROCESSING_TASK": "classification",
        "MMAR_EVAL_OUTPUT_PATH": "eval",
        "MMAR_CKPT_DIR": "models",
        "MMAR_CKPT": "models/model.pt",
        "MMAR_TORCHSCRIPT": "models/model.ts"
    });
    let train = json!({
        "epochs": 200,
        "num_interval_per_valid": 5,
        "learning_rate": 1e-4,
        "multi_gpu": false,
        "amp": true,
        "cudnn_benchmark": false,
        "train": {
            "loss": { "name": "CrossEntropyLoss" },
            "optimizer": { "name": "Adam", "args": { "lr": "{learning_rate}" } },
            "model": { "name": "DenseNet121", "args": { "spatial_dims": 3, "in_channels": 2, "out_channels": 2 } },
            "pre_transforms": [
                { "name": "LoadImaged", "args": { "keys": ["image", "label_image"] } },
                { "name": "EnsureChannelFirstd", "args": { "keys": ["image", "label_image"] } },
                { "name": "ScaleIntensityRanged", "args": { "keys": "image", "a_min": -1000, "a_max": 500, "b_min": 0.0, "b_max": 1.0, "clip": true } },
                { "name": "CropForegroundd", "args": { "keys": ["image", "label_image"], "source_key": "label_image" } },
                { "name": "Resized", "args": { "keys": ["image", "label_image"], "spatial_size": [192, 192, 64] } },
                { "name": "ConcatItemsd", "args": { "keys": ["image", "label_image"], "name": "image" } }
            ],
            "dataset": { "name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "training" },
            "dataloader": { "name": "DataLoader", "args": { "batch_size": 4, "shuffle": true, "num_workers": 4 } }
        },
        "validate": {
            "metrics": [ { "name": "ROCAUC", "log_label": "val_auc", "is_key_metric": true } ],
            "dataset": { "name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "validation" }
        }
    });
    let validation = json!({
        "multi_gpu": false,
        "amp": true,
        "model": [ { "ts_path": "{MMAR_TORCHSCRIPT}" }, { "ckpt_path": "{MMAR_CKPT}" } ],
        "dataset": { "name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "validation" },
        "metrics": [ { "name": "ROCAUC", "log_label": "val_auc", "is_key_metric": true } ],
        "output_path": "{MMAR_EVAL_OUTPUT_PATH}"
    });
    let pretty = |v: &Value| {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
        s.push('\n');
        s
    };
    vec![
        ("commands/set_env.sh".into(), set_env.into()),
        (
            "commands/train.sh".into(),
            script("medl.apps.train", "config_train.json", ""),
        ),
        (
            "commands/train_multi_gpu.sh".into(),
            script("medl.apps.train", "config_train.json", "    multi_gpu=True \\\n"),
        ),
        (
            "commands/finetune.sh".into(),
            script(
                "medl.apps.train",
                "config_train.json",
                "    MMAR_CKPT=$MMAR_ROOT/models/model.pt \\\n    epochs=50 \\\n",
            ),
        ),
        (
            "commands/validate_ckpt.sh".into(),
            script(
                "medl.apps.evaluate",
                "config_validation.json",
                "    MMAR_CKPT=$MMAR_ROOT/models/model.pt \\\n",
            ),
        ),
        ("config/environment.json".into(), pretty(&env)),
        ("config/config_train.json".into(), pretty(&train)),
        ("config/config_validation.json".into(), pretty(&validation)),
        (
            "docs/license.txt".into(),
            "clara_pt_covid19_3d_ct_classification (emulated copy)\n\nServed by clara-emulator behind a licence gate (HTTP 412 until accepted). The model files are\npseudo-random placeholders, not trained weights.\n".into(),
        ),
        (
            "docs/Readme.md".into(),
            "# COVID-19 3D CT classification (Clara Train 4.x, PyTorch)\n\nDenseNet121 (MONAI) classifying chest CT as COVID-19 or not. `models/model.pt` is the\ncheckpoint and `models/model.ts` the TorchScript export. Commands: `train.sh`,\n`train_multi_gpu.sh`, `finetune.sh`, `validate_ckpt.sh`.\n\nServed by clara-emulator for tests; the model files are placeholders.\n".into(),
        ),
    ]
}
