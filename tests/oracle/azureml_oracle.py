"""Microsoft's azure-ai-ml as an oracle against clara-emulator (run by tests/oracle_azureml.rs).

The SDK finds the emulator only through ARM_CLOUD_METADATA_URL (its `_azure_environments`
reads the cloud document and picks the cloud whose `resourceManager` is in that URL); it trusts
the emulator's CA through REQUESTS_CA_BUNDLE, and signs in with ClientSecretCredential against
the emulator's authority. Nothing in this script names an emulator route.

Each step is announced to the emulator with a marker request (the metadata document with an
extra `oracle-step` query parameter), so the test can attribute every logged request to a step.
Results go to stdout as one JSON object per line; any failure raises (non-zero exit).

Environment: ORACLE_URL (emulator base URL), ORACLE_TENANT, ORACLE_CLIENT_ID, ORACLE_CLIENT_SECRET,
ORACLE_SUBSCRIPTION, ORACLE_RESOURCE_GROUP, ORACLE_WORKSPACE, ARM_CLOUD_METADATA_URL,
REQUESTS_CA_BUNDLE.
"""

import json
import os
import sys
import time

import requests
from azure.ai.ml import Input, MLClient, Output, command
from azure.ai.ml._azure_environments import _get_active_directory_url_from_metadata
from azure.ai.ml.entities import AmlCompute, Environment
from azure.identity import ClientSecretCredential

URL = os.environ["ORACLE_URL"].rstrip("/")
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}


def emit(**kv):
    print(json.dumps(kv, default=str), flush=True)


def step(name):
    # A marker the test finds in the request log; not part of any SDK operation.
    r = requests.get(
        f"{URL}/metadata/endpoints",
        params={"api-version": "2022-09-01", "oracle-step": name},
        timeout=30,
    )
    r.raise_for_status()
    emit(step=name)


def wait_status(ml, name, want, limit_s=120):
    """Polls the job (as a user of the SDK does) until it reaches a terminal status."""
    deadline = time.monotonic() + limit_s
    polls = 0
    while True:
        job = ml.jobs.get(name)
        polls += 1
        if job.status in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} still {job.status} after {limit_s}s")
        time.sleep(0.2)
    if job.status != want:
        raise AssertionError(f"job {name} ended {job.status}, expected {want}")
    return job, polls


def main():
    sub = os.environ["ORACLE_SUBSCRIPTION"]
    rg = os.environ["ORACLE_RESOURCE_GROUP"]
    ws = os.environ["ORACLE_WORKSPACE"]

    step("sign-in")
    # The sign-in authority comes from the cloud document (authentication.loginEndpoint), as
    # the SDK resolves it; instance discovery is off, as azure-identity documents for private
    # clouds (it would otherwise ask login.microsoftonline.com about this authority).
    authority = _get_active_directory_url_from_metadata()
    assert authority == URL, (authority, URL)
    cred = ClientSecretCredential(
        os.environ["ORACLE_TENANT"],
        os.environ["ORACLE_CLIENT_ID"],
        os.environ["ORACLE_CLIENT_SECRET"],
        authority=authority,
        disable_instance_discovery=True,
    )
    ml = MLClient(cred, subscription_id=sub, resource_group_name=rg, workspace_name=ws)

    step("workspace.get")
    w = ml.workspaces.get(ws)
    assert w.name == ws, w.name
    assert w.location == "eastus", w.location
    emit(workspace=w.name, location=w.location, mlflow=w.mlflow_tracking_uri)

    step("compute.create")
    cluster = AmlCompute(
        name="oracle-gpu",
        size="Standard_NC6s_v3",
        min_instances=0,
        max_instances=2,
        idle_time_before_scale_down=300,
        tier="dedicated",
    )
    created = ml.compute.begin_create_or_update(cluster).result()
    assert created.provisioning_state == "Succeeded", created.provisioning_state
    emit(compute=created.name, size=created.size, state=created.provisioning_state)

    step("compute.get")
    got = ml.compute.get("oracle-gpu")
    assert got.size.lower() == "standard_nc6s_v3", got.size
    assert got.max_instances == 2, got.max_instances
    assert got.idle_time_before_scale_down == 300, got.idle_time_before_scale_down
    emit(compute=got.name, size=got.size, max_instances=got.max_instances)

    step("compute.update")
    got.max_instances = 3
    updated = ml.compute.begin_update(got).result()
    assert updated.max_instances == 3, updated.max_instances
    emit(compute=updated.name, max_instances=updated.max_instances)

    step("environment.create")
    conda = {
        "name": "oracle",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.10", "numpy", {"pip": ["pydicom"]}],
    }
    env = ml.environments.create_or_update(
        Environment(
            name="oracle-env",
            version="1",
            image="nvcr.io/nvidia/clara-train-sdk:v3.0",
            conda_file=conda,
            description="azure-ai-ml oracle",
            tags={"team": "radiology"},
        )
    )
    assert env.version == "1", env.version
    assert env.image == "nvcr.io/nvidia/clara-train-sdk:v3.0", env.image
    emit(environment=env.name, version=env.version, id=env.id)

    step("environment.get")
    env = ml.environments.get("oracle-env", version="1")
    # The SDK sends the conda file as YAML text (condaFile) and parses it back.
    assert env.conda_file == conda, env.conda_file
    assert env.tags == {"team": "radiology"}, env.tags
    assert env.description == "azure-ai-ml oracle", env.description
    emit(environment=env.name, conda_file=env.conda_file)

    step("job.create")
    job = ml.jobs.create_or_update(
        command(
            command="echo hello from the oracle",
            environment="azureml:oracle-env:1",
            compute="oracle-gpu",
            experiment_name="oracle",
            display_name="oracle hello",
            environment_variables={"ORACLE": "1"},
            inputs={"epochs": 5, "notes": Input(type="uri_folder", path="azureml://datastores/workspaceblobstore/paths/notes/")},
            outputs={"model": Output(type="uri_folder")},
            # Sent as limits.timeout "PT4H" (isodate), read back as seconds.
            timeout=14400,
            shm_size="8g",
            instance_count=1,
            distribution={"type": "PyTorch", "process_count_per_instance": 1},
        )
    )
    assert job.status in ("NotStarted", "Starting", "Queued", "Preparing", "Running"), job.status
    emit(job=job.name, status=job.status)

    step("job.wait")
    done, polls = wait_status(ml, job.name, "Completed")
    emit(job=done.name, status=done.status, polls=polls)

    step("job.get")
    back = ml.jobs.get(job.name)
    assert back.status == "Completed", back.status
    assert back.command == "echo hello from the oracle", back.command
    assert back.compute.endswith("oracle-gpu") or back.compute == "oracle-gpu", back.compute
    assert back.experiment_name == "oracle", back.experiment_name
    assert back.display_name == "oracle hello", back.display_name
    assert back.environment_variables.get("ORACLE") == "1", back.environment_variables
    assert "oracle-env" in str(back.environment), back.environment
    assert back.limits.timeout == 14400, back.limits.timeout
    assert back.resources.shm_size == "8g", back.resources.shm_size
    assert back.resources.instance_count == 1, back.resources.instance_count
    assert back.distribution.process_count_per_instance == 1, back.distribution
    assert str(back.inputs["epochs"]._data) == "5", back.inputs["epochs"]
    assert back.inputs["notes"].type == "uri_folder", back.inputs["notes"]
    assert "model" in back.outputs, back.outputs
    emit(
        job=back.name,
        status=back.status,
        compute=back.compute,
        environment=str(back.environment),
        timeout=back.limits.timeout,
        outputs=sorted(back.outputs),
        services=sorted(back.services or {}),
        studio_url=back.studio_url,
        properties=sorted((back.properties or {}).keys()),
    )

    step("job.cancel")
    long = ml.jobs.create_or_update(
        command(
            command="sleep 600",
            environment="azureml:oracle-env:1",
            compute="oracle-gpu",
            experiment_name="oracle",
            tags={"clara-emulator/duration-s": "600"},
        )
    )
    ml.jobs.begin_cancel(long.name).result()
    canceled, polls = wait_status(ml, long.name, "Canceled")
    emit(job=canceled.name, status=canceled.status, polls=polls)

    step("compute.delete")
    ml.compute.begin_delete("oracle-gpu").result()
    try:
        ml.compute.get("oracle-gpu")
    except Exception as e:  # azure.core.exceptions.ResourceNotFoundError
        assert type(e).__name__ == "ResourceNotFoundError", repr(e)
    else:
        raise AssertionError("compute still there after delete")
    emit(compute="oracle-gpu", deleted=True)

    step("end")
    import azure.ai.ml
    import azure.identity

    emit(done=True, azure_ai_ml=azure.ai.ml.__version__, azure_identity=azure.identity.__version__)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        import traceback

        traceback.print_exc()
        emit(error=repr(e))
        sys.exit(1)
