"""This experiment's environments as gymnasium ids, registered when this module is imported.

From inside doomrnn/:

    import gymnasium as gym
    import gym_envs
    env = gym.make('WorldModels/TakeCover-v0', render_mode='rgb_array')      # the real game, 64x64 frames
    dream = gym.make('WorldModels/TakeCoverDream-v0', temperature=1.15)       # M's dream, one at a time
    dreams = gym.make_vec('WorldModels/TakeCoverDream-v0', num_envs=64)       # 64 dreams as one numpy batch

or without the import: gym.make('gym_envs:WorldModels/TakeCover-v0').

| id | class | keyword arguments |
| --- | --- | --- |
| WorldModels/TakeCover-v0 | env.DoomTakeCoverEnv | render_mode, max_steps |
| WorldModels/TakeCoverDream-v0 | doomrnn.DoomCoverRNNEnv, make_vec: doomrnn.DoomCoverRNNVectorEnv | models_dir, temperature, max_steps, render_mode (make_vec: autoreset_mode) |

models_dir defaults to the shipped tf_models/, relative to doomrnn/; it may also be a dict of the
three files' paths, as runtime.world_paths(folder, rnn=..., initial_z=...) makes one.
"""

import gymnasium as gym

from doomrnn import DoomCoverRNNEnv, DoomCoverRNNVectorEnv
from env import DoomTakeCoverEnv

TAKE_COVER = 'WorldModels/TakeCover-v0'
TAKE_COVER_DREAM = 'WorldModels/TakeCoverDream-v0'

# max_episode_steps None: each env ends its episodes itself (max_steps), and make_vec then
# passes no TimeLimit argument to the VectorEnv.
SPECS = {
    # the 2018 paper's "solved": 750 steps survived on average over 100 episodes
    TAKE_COVER: dict(entry_point=DoomTakeCoverEnv, reward_threshold=750),
    TAKE_COVER_DREAM: dict(entry_point=DoomCoverRNNEnv, vector_entry_point=DoomCoverRNNVectorEnv),
}

for env_id, spec in SPECS.items():
    if env_id not in gym.registry:   # importing twice (a notebook's re-run) keeps the first registration
        gym.register(env_id, max_episode_steps=None, **spec)
