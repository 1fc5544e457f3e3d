"""The tasks estool trains on: a gymnasium env and the network that drives it."""

from collections import namedtuple

# layers: hidden sizes; output_activation squashes actions into the env's range.
Game = namedtuple('Game', ['env_id', 'input_size', 'output_size', 'layers', 'output_activation',
                           'max_steps'])

GAMES = {
    # Written here (estool/cartpole_swingup.py); the original estool's first demo task.
    'cartpole_swingup': Game('WorldModels/CartPoleSwingUp-v0', 5, 1, (5, 5), 'tanh', 1000),
    # gymnasium's box2d walker: 24 lidar/joint inputs, 4 joint torques.
    'bipedal_walker': Game('BipedalWalker-v3', 24, 4, (40, 40), 'tanh', 1600),
}
