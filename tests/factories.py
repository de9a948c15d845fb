"""factory_boy factories for the tests' users and topics.

UserFactory(username="op", role="operator")            a user in the `operator` role group
UserFactory(is_staff=True, is_superuser=True)          an admin
UserFactory(groups=[team])                             a user in other groups
Every user's password is PASSWORD unless one is given (password=None: an unusable one).
"""

import uuid

import factory
from django.contrib.auth.models import Group, User

from recon.models import Topic
from tests.names import name_make

PASSWORD = "test-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}-{uuid.uuid4().hex[:6]}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """A role group by name (viewer, operator, admin), made if missing: a transactional test flushes them."""
        if create and extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*extracted)


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic

    name = factory.LazyFunction(lambda: name_make("topic"))
    consumer_group = factory.LazyFunction(lambda: name_make("grp"))
    kind = Topic.Kind.OTHER
