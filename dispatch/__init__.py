"""The delivery business domain: orders, facilities, allocation and dispatch (pure logic, no I/O)."""
