"""SGD with momentum, Eq. (11): v <- m v - lr grad; theta <- theta + v."""


def sgd_momentum(param, grad, velocity, lr, momentum):
    """Eq. (11) for one parameter, out of place.

    Parameters
    ----------
    param, grad, velocity : arrays of one shape
    lr : float
        Learning rate eta_k.
    momentum : float
        Momentum m_k.

    Returns
    -------
    param : array
        theta + v_new.
    velocity : array
        v_new = m v - lr grad.
    """
    velocity = momentum * velocity - lr * grad
    return param + velocity, velocity


def sgd_momentum_(params, grads, velocity, lr, momentum):
    """Eq. (11) in place over dicts of parameters, gradients and velocities.

    The same arithmetic as :func:`sgd_momentum`, without allocating new parameters: each
    velocity and parameter is read and written once.
    """
    for name, p in params.items():
        v = velocity[name]
        v *= momentum
        v -= lr * grads[name]
        p += v
