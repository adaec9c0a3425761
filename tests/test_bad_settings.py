"""Bad inputs, settings: impossible numbers, misspelled keys and options, the wrong command for
a file (see tests/badinput.py for what each case asserts)."""

import pytest

from badinput import TINY_GEN, box, case, cases, run_case, shared  # noqa: F401 (fixtures)

NUMBERS, COMMANDS = "numbers", "commands"


def train(shared, *extra):
    return ["train", *TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}",
            "hydra.run.dir=../runs/r", *extra]


def no_run_folder(box, result, shared):
    assert not (box.root / "runs" / "r").exists() and not (box.work / "outputs").exists()


TRAIN_NUMBERS = [
    ("seed_negative", "seed=-1", "seed must be an integer from 0"),
    ("seed_beyond_numpy", "seed=99999999999999999999", "seed must be an integer from 0"),
    ("lr_infinite", "optimizer.lr=inf", "learning rate must be positive and finite"),
    ("lr_nan", "optimizer.lr=nan", "learning rate must be positive and finite"),
    ("lr_negative", "optimizer.lr=-1", "learning rate must be positive"),
    ("lr_zero", "optimizer.lr=0", "learning rate must be positive"),
    ("generator_lr_infinite", "optimizer.generator.lr=inf", "generator learning rate"),
    ("max_steps_zero", "trainer.max_steps=0", "trainer.max_steps must be at least 1"),
    ("max_steps_negative", "trainer.max_steps=-5", "trainer.max_steps must be at least 1"),
    ("max_steps_a_word", "trainer.max_steps=many", "trainer.max_steps"),
    ("no_end", "trainer.max_steps=null", "would never end"),
    ("n_critic_zero", "trainer.n_critic=0", "trainer.n_critic must be at least 1"),
    ("warmup_negative", "trainer.d_warmup_steps=-1", "trainer.d_warmup_steps must be 0 or more"),
    ("batch_size_zero", "dataset.batch_size=0", "dataset.batch_size must be an integer >= 1"),
    ("image_size_zero", "dataset.image_size=0", "dataset.image_size must be an integer >= 1"),
    ("workers_negative", "dataset.num_workers=-1", "dataset.num_workers must be an integer >= 0"),
    ("latent_dim_zero", "model.latent_dim=0", "model.latent_dim must be at least 1"),
    ("ema_decay_above_one", "ema=decay ema.decay=1.5", "ema.decay must be in [0, 1)"),
    ("width_a_word", "model.generator.width=wide", "model.generator.width"),
    ("misspelled_key_added_with_plus", "+model.generator.widht=4", "Did you mean `width`"),
    ("image_size_dcgan_cannot_make", "dataset.image_size=30", "cannot produce 30x30 images"),
]

for name, override, text in TRAIN_NUMBERS:
    case(NUMBERS, name, message=text, check=no_run_folder)(
        lambda box, shared, override=override: train(shared, *override.split()))


SAMPLE_NUMBERS = [
    ("sample_num_zero", "num=0", "num must be at least 1"),
    ("sample_batch_zero", "batch_size=0", "batch_size must be at least 1"),
    ("sample_steps_one", "steps=1", "steps must be at least 2"),
    ("sample_truncation_negative", "truncation=-1", "truncation must be 0 or more"),
    ("sample_label_out_of_range", "label=10", "label=10 is out of range"),
    ("sample_num_a_word", "num=ten", "invalid value for `num`"),
    ("sample_style_option_on_dcgan", "noise_mode=const",
     "unknown key `noise_mode` (this model is an image generator"),
]

for name, option, text in SAMPLE_NUMBERS:
    case(NUMBERS, name, message=text)(
        lambda box, shared, option=option: ["sample", f"ckpt={shared.gen_ckpt}", option,
                                            "out=../out/s"])


@case(NUMBERS, "eval_seed_a_word", message="seed")
def _(box, shared):
    return ["eval", f"ckpt={shared.toy_ckpt}", "metrics=modes", "seed=abc"]


# Commands: misspelled keys and options, the wrong command for a file.

@case(COMMANDS, "misspelled_key", message="Did you mean `trainer.max_steps`", check=no_run_folder)
def _(box, shared):
    return train(shared, "trainer.max_step=3")


@case(COMMANDS, "key_without_its_group", message="Did you mean `optimizer.lr`",
      check=no_run_folder)
def _(box, shared):
    return train(shared, "lr=1e-3")


@case(COMMANDS, "misspelled_model", message=["Did you mean `model=dcgan`", "mlp, pix2pix"],
      check=no_run_folder)
def _(box, shared):
    return train(shared, "model=dcgn")


@case(COMMANDS, "misspelled_loss", message="Did you mean `loss=hinge`", check=no_run_folder)
def _(box, shared):
    return train(shared, "loss=hinje")


@case(COMMANDS, "misspelled_eval_metrics", message="Did you mean `metrics=fid`")
def _(box, shared):
    return ["eval", f"ckpt={shared.toy_ckpt}", "metrics=fidd"]


@case(COMMANDS, "broken_yaml_in_config_dir", message=["not valid YAML", "bad.yaml"],
      check=no_run_folder)
def _(box, shared):
    (box.src / "conf" / "model").mkdir(parents=True)
    (box.src / "conf" / "model" / "bad.yaml").write_text("generator: [unclosed\n")
    return train(shared, "model=bad", "--config-dir", str(box.src / "conf"))


@case(COMMANDS, "misspelled_key_inside_a_user_yaml", message="widht", check=no_run_folder)
def _(box, shared):
    (box.src / "conf" / "model").mkdir(parents=True)
    (box.src / "conf" / "model" / "mine.yaml").write_text(
        "defaults:\n  - dcgan\n  - _self_\ngenerator:\n  widht: 8\n")
    return train(shared, "model=mine", "--config-dir", str(box.src / "conf"))


@case(COMMANDS, "unknown_command", message="unknown command 'trian'")
def _(box, shared):
    return ["trian"]


@case(COMMANDS, "sample_unknown_key", message="Did you mean `num`")
def _(box, shared):
    return ["sample", f"ckpt={shared.gen_ckpt}", "nmu=4"]


@case(COMMANDS, "sample_without_checkpoint", message="no checkpoint given")
def _(box, shared):
    return ["sample", "num=4"]


@case(COMMANDS, "sample_missing_checkpoint", message="does not exist")
def _(box, shared):
    return ["sample", f"ckpt={box.src / 'gone.ckpt'}"]


@case(COMMANDS, "sample_a_translator", message="ganrun translate")
def _(box, shared):
    return ["sample", f"ckpt={shared.cycle_ckpt}", "out=../out/s"]


@case(COMMANDS, "translate_a_generator", message="ganrun sample")
def _(box, shared):
    from fakedata import write_png

    write_png(box.src / "in" / "a.png", (28, 28), (0, 0, 0))
    return ["translate", f"ckpt={shared.gen_ckpt}", f"in={box.src / 'in'}", "out=../out/t"]


@case(COMMANDS, "export_without_out", message="give both ckpt=")
def _(box, shared):
    return ["export", f"ckpt={shared.gen_ckpt}"]


@case(COMMANDS, "eval_checkpoint_and_folders", message="Give either ckpt=PATH")
def _(box, shared):
    return ["eval", f"ckpt={shared.toy_ckpt}", f"real={box.src}", f"fake={box.src}"]


@case(COMMANDS, "eval_no_metric", message="No metric is selected")
def _(box, shared):
    return ["eval", f"ckpt={shared.toy_ckpt}", "metrics=none"]


MISFITS = [
    ("stylegan2_with_dcgan", ["task=stylegan2", "model=dcgan"],
     ["task=stylegan2 needs a style-based generator", "model=stylegan2"]),
    ("cyclegan_with_dcgan", ["task=cyclegan", "model=dcgan", "dataset=fashion_domains"],
     ["task=cyclegan needs image-to-image networks", "model=cyclegan"]),
    ("generation_with_cyclegan_nets", ["task=generation", "model=cyclegan"],
     ["task=generation needs a generator of images from latents", "model=dcgan"]),
]
for name, overrides, texts in MISFITS:
    case(COMMANDS, f"model_not_fitting_{name}", message=texts, check=no_run_folder)(
        lambda box, shared, overrides=overrides: ["train", "hardware=cpu", *overrides,
                                                  "hydra.run.dir=../runs/r"])


@case(COMMANDS, "translation_metrics_of_a_paired_translator",
      message=["metrics=translation measures an unpaired translator", "metrics=paired"])
def _(box, shared):
    return ["eval", f"ckpt={shared.inpaint_ckpt}", "metrics=translation", "num_samples=4"]


@case(COMMANDS, "gpu_on_a_machine_without_one", message="hardware=auto", check=no_run_folder)
def _(box, shared):
    return train(shared, "hardware=gpu")


@pytest.mark.parametrize("c", cases(NUMBERS) + cases(COMMANDS))
def test_bad_setting(c, box, shared):
    run_case(c, box, shared)
