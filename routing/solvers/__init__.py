"""Vehicle-routing solver backends behind one RouteSolver protocol."""
