"""Generic road networks, travel-time matrices and vehicle-routing solvers; knows nothing of orders."""
