"""Labour: clock in/out per person, labour booked against job operations, labour hours."""
