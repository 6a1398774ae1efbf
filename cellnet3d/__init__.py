__version__ = "0.1.0"

from .config import *
from .lattice import *
from .moe import *
from .mapper import *
from .tokens import *
from .model import *
from .linear import *
from .losses import *
from .run import *
from .loggers import *
from .memory import *
from .trainer import *
from .teacher import *
from .data import *
from .wordnet import *
from .evaluate import *
from .order import *
from .compose import *
from .decoder import *
from .distributed import *
