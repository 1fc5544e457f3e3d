"""This experiment's environments as gymnasium ids, registered when this module is imported.

From inside carracing/:

    import gymnasium as gym
    import gym_envs
    env = gym.make('WorldModels/CarRacing-v0', render_mode='rgb_array')     # the real game as V sees it
    dream = gym.make('WorldModels/CarRacingDream-v0', temperature=1.15)      # M's dream, one at a time
    dreams = gym.make_vec('WorldModels/CarRacingDream-v0', num_envs=64)      # 64 dreams as one numpy batch

or without the import: gym.make('gym_envs:WorldModels/CarRacing-v0').

| id | class | keyword arguments |
| --- | --- | --- |
| WorldModels/CarRacing-v0 | env.CarRacingEnv | render_mode, max_steps, full_episode, fast_render |
| WorldModels/CarRacingDream-v0 | dream_env.CarRacingDreamEnv, make_vec: dream_env.CarRacingDreamVectorEnv | vae_path, rnn_path, initial_z_path, temperature, max_steps, render_mode (make_vec: autoreset_mode) |

Weights paths default to the shipped files, relative to carracing/.
"""

import gymnasium as gym

from dream_env import CarRacingDreamEnv, CarRacingDreamVectorEnv
from env import CarRacingEnv

CAR_RACING = 'WorldModels/CarRacing-v0'
CAR_RACING_DREAM = 'WorldModels/CarRacingDream-v0'

# max_episode_steps None: each env ends its episodes itself (max_steps), and make_vec then
# passes no TimeLimit argument to the VectorEnv.
SPECS = {
    CAR_RACING: dict(entry_point=CarRacingEnv, reward_threshold=900),   # CarRacing-v3's threshold
    CAR_RACING_DREAM: dict(entry_point=CarRacingDreamEnv, vector_entry_point=CarRacingDreamVectorEnv),
}

for env_id, spec in SPECS.items():
    if env_id not in gym.registry:   # importing twice (a notebook's re-run) keeps the first registration
        gym.register(env_id, max_episode_steps=None, **spec)
