import os
import signal

import pytest
import torch

# Tests that take seconds each (training to a measured likelihood, subprocesses, Inception,
# signals): marked `slow`, so `pytest -m "not slow"` is the inner loop and the full suite is CI's.
SLOW = {
    "test_fid.py": ["test_real_fid_is_zero_on_itself_and_positive_on_a_shifted_set",
                    "test_converted_weights_reproduce_the_torchscript_features"],
    "test_train.py": ["test_training_raises_exact_log_likelihood_above_independent_pixels",
                      "test_resume_equals_uninterrupted", "test_lr_decay_trains_differently_resumes_exactly_and_reaches_zero",
                      "test_same_seed_same_weights_and_different_seed_differs", "test_run_folder_contents"],
    "test_fuzz.py": ["test_fuzzed_checkpoints_are_refused_with_one_line", "test_damaged_images_for_reconstruct_are_refused"],
    "test_scale.py": ["test_compiled_training_matches_eager", "test_two_processes_match_one_with_the_same_global_batch"],
    "test_reliability.py": ["test_sigint_sigterm_save_exit_130_and_resume", "test_sigkill_mid_epoch_then_resume_equals_uninterrupted",
                            "test_kill_between_state_and_model_write_resumes_exactly"],
    "test_allocator.py": ["test_large_tensors_are_reused_instead_of_mapped_again"],
    "test_generation.py": ["test_chains_from_different_noise_end_in_different_states",
                           "test_a_binary_784_16_rbm_beats_independent_pixels_on_mnist",
                           "test_moment_matched_chain_matches_the_exact_copies_chain",
                           "test_a_layer_of_mixed_unit_families_trains_as_well_as_a_shared_one"],
    "test_cli_evaluate.py": ["*"],
    "test_new_user.py": ["test_converting_the_fid_weights_raises_no_warning"],
    "test_pictures.py": ["test_conv_filters_are_upscaled_color_kernels", "test_dense_filters_are_each_hidden_units_weights_as_an_image",
                         "test_report_is_self_contained_html_with_every_picture",
                         "test_report_without_pictures_draws_filters_from_the_checkpoint",
                         "test_tensorboard_events_hold_the_metrics"],
    "test_celeba_e2e.py": ["*"],
    "test_arch_choice.py": ["test_celeba_without_arch_trains_the_scaled_conv_stack_and_says_so_first"],
    "test_cli_train.py": ["test_train_on_real_mnist_writes_a_run"],
    "test_generate.py": ["test_trained_model_reconstructs_better_than_untrained"],
    "test_trainer_options.py": ["test_bf16_and_channels_last_train_like_fp32", "test_rbm_report_end_to_end"],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds; deselect with -m 'not slow' for a fast inner loop")


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = SLOW.get(item.path.name, [])
        if "*" in names or item.originalname in names:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With RBMCLI_NO_SKIPS=1 (set by CI, which installs every optional package and dataset)
    a skipped test is a failure: a missing package must not hide a test."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("RBMCLI_NO_SKIPS") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but RBMCLI_NO_SKIPS=1 requires every test to run: {reason}"


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny problems: threads only add latency
    yield


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """`rbm train` in-process installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.fixture
def float64():
    """Reference comparisons in float64 (`pytestmark = pytest.mark.usefixtures("float64")`); the
    default dtype is restored after each test."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
